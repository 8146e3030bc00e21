"""Classifier benchmark: training time, and scoring throughput on one core.

    python -m bench classify [--n 50000] [--seed 0] [--quick]

Scores N texts drawn from the training set's texts (news headlines and ledes, Reddit posts
and comments; every text is scored, nothing is cached between texts except the word lookup
table that production uses too). Scoring means the whole model: market extraction, cue
features, TF-IDF and the calibrated SVM. Thread pools are limited to one thread. Besides the
wall-clock rate it prints the rate per CPU-second, which is what one core delivers when other
processes share the machine. It also scores news-length texts (the generated feed entries of
bench/_feeds.py, title and body), which is what the collector hands the model.

The baseline, in the same run: the plainest text classifier there is (TF-IDF over words and a
logistic regression) trained and scored on the same texts.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from threadpoolctl import threadpool_limits

from monitor.classify import dataset, model

from ._common import Report

GOAL_ITEMS_PER_S = 5000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench classify")
    parser.add_argument("--n", type=int, default=50_000, help="texts to score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000, help="texts per score() call")
    parser.add_argument("--quick", action="store_true", help="a few texts, for the tests")
    parser.add_argument("--dir", help="unused (the entry point passes it to every benchmark)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 500
    report = Report("classify")

    with threadpool_limits(limits=1):
        examples = dataset.training_set()
        started = time.perf_counter()
        classifier = model.train(examples)
        train_seconds = time.perf_counter() - started

        rng = random.Random(args.seed)
        pool = [e.text for e in examples]
        texts = [rng.choice(pool) for _ in range(args.n)]
        chars = statistics.mean(len(t) for t in texts)
        classifier.score(texts[:200])  # warm up: imports, the extractor's index

        started, cpu_started = time.perf_counter(), time.process_time()
        flagged = 0
        for start in range(0, len(texts), args.batch):
            flagged += int((classifier.score(texts[start:start + args.batch]) >= 0.5).sum())
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started

    print(f"training: {len(examples)} examples in {train_seconds:.2f}s (one thread)")
    print(f"scoring: {len(texts)} texts (mean {chars:.0f} characters) in {seconds:.2f}s = "
          f"{len(texts) / seconds:,.0f} items/s on one core; {flagged} flagged")
    # On a busy machine the wall clock counts other processes' time too; CPU time does not.
    print(f"CPU time: {cpu:.2f}s = {len(texts) / cpu:,.0f} items per CPU-second; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    with threadpool_limits(limits=1):
        plain, base_train = _baseline(examples)
        base_cpu_rate = _cpu_rate(plain, texts, args.batch)
        news = _news_texts(max(100, args.n // 10), args.seed)
        base_news_rate = _cpu_rate(plain, news, args.batch)
        news_cpu = time.process_time()
        for start in range(0, len(news), args.batch):
            classifier.score(news[start:start + args.batch])
        news_cpu = time.process_time() - news_cpu
    report.add("training", train_seconds, "s", baseline=base_train,
               baseline_name="TF-IDF + logistic regression")
    report.add(f"scoring, training-set texts (mean {chars:.0f} chars)", len(texts) / cpu,
               "items per CPU-second", baseline=base_cpu_rate,
               baseline_name="TF-IDF + logistic regression", goal=GOAL_ITEMS_PER_S,
               goal_of="min", note=f"wall clock {len(texts) / seconds:,.0f}/s")
    report.add(f"scoring, news entries (mean {statistics.mean(map(len, news)):.0f} chars)",
               len(news) / news_cpu, "items per CPU-second", baseline=base_news_rate,
               baseline_name="TF-IDF + logistic regression", goal=GOAL_ITEMS_PER_S,
               goal_of="min")
    report.fact("flagged", flagged)
    return 0


def _baseline(examples: list) -> tuple[object, float]:
    """TF-IDF + logistic regression trained on the same examples, and its training time."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    usable = [e for e in examples if e.label in (0, 1)]
    started = time.perf_counter()
    plain = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2),
                          LogisticRegression(max_iter=1000))
    plain.fit([e.text for e in usable], [e.label for e in usable])
    return plain, time.perf_counter() - started


def _cpu_rate(plain: object, texts: list[str], batch: int) -> float:
    plain.predict_proba(texts[:200])  # type: ignore[attr-defined]
    cpu = time.process_time()
    for start in range(0, len(texts), batch):
        plain.predict_proba(texts[start:start + batch])  # type: ignore[attr-defined]
    return len(texts) / (time.process_time() - cpu)


def _news_texts(n: int, seed: int) -> list[str]:
    """Title and body of generated feed entries, as the collector stores them."""
    from monitor.text import html_to_text

    from ._feeds import FeedSpec, entry

    spec = FeedSpec(feeds=max(1, n // 100) + 1, seed=seed)
    out = []
    for number in range(n):
        e = entry(spec, number % spec.feeds, number // spec.feeds)
        out.append(f"{html_to_text(e.title)}\n{html_to_text(e.content)}")
    return out
