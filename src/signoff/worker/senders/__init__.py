"""Senders hand one delivery to the outside world and report what happened. They never raise
for a failed delivery: a failure is a result the dispatcher records and retries."""
