"""The worker: the dispatcher delivers events, the scheduler settles approvals at deadlines.

It runs inside ``signoff server run`` by default and alone as ``signoff worker``; any number of
workers can share one PostgreSQL database.
"""
