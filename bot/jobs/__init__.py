"""Scheduled work: the APScheduler wiring, the leader lock and thin job functions.

- `scheduler`: a BackgroundScheduler whose jobs persist in our own database, and the fixed
  set of jobs (ids, triggers) it should hold, synchronised from subscriptions and config.
- `jobs`: the module-level job functions APScheduler stores references to.
- `leader`: the lock that makes one process across replicas run the scheduler.
- `runner`: the loop that acquires the lock, starts the scheduler and stops it on loss.
"""
