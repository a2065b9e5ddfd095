"""Evaluation harness: labelled data sets in, the paper's ACC/AUROC/AUPR tables out.

datasets.py and nab.py read the data set layouts; references.py picks reference normals from
training data only; runner.py runs every (item, strategy) through a Session, concurrently, with
results cached in results.jsonl (cache.py); metrics.py, report.py, plots.py and costs.py turn the
results into metrics.json, metrics.csv, report.md and PNG charts.
"""
