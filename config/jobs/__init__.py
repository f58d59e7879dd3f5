"""The one job runner for every asynchronous piece of work: project runs, model packaging,
disclosure PDFs. It owns claim, lease and heartbeat, retry with backoff, cancellation, the
stale-lease sweep and the queue names (runner.py); each app only declares its kinds of job
(kinds.py), in its own `jobs.py`, registered when the app is ready."""
