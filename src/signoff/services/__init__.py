"""Use cases: one function each. A service opens the transaction, makes the change, writes its
events and audit entry through ``journal``, and commits once."""
