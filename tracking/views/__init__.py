"""Browser pages of tracking: experiments, the runs table, a run, comparing runs.

Each module is one page (or one page and its JSON/download companion); tracking/web_urls.py
names them. Reads go through tracking.selectors and tracking.search, writes through
tracking.services, exactly as the MLflow API does, so the pages add no rules of their own.
"""
