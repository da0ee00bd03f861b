"""signoff: human-in-the-loop approvals for ML and data pipelines.

The SDK lives here and needs no server dependencies::

    import signoff

    with signoff.Client("http://127.0.0.1:8000", api_key="sok_...") as client:
        approval = client.approvals.create(title="Apply batch?", approvers=["team:owners"])
        approval = approval.wait()
"""

from signoff import errors, webhooks
from signoff.__about__ import __version__
from signoff.client import Approval, AsyncClient, Client
from signoff.errors import SignoffError

__all__ = [
    "Approval",
    "AsyncClient",
    "Client",
    "SignoffError",
    "__version__",
    "errors",
    "webhooks",
]
