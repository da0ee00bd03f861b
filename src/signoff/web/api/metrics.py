"""GET /metrics: Prometheus gauges of the work waiting in the database.

Open without credentials, to clients in ``SIGNOFF_METRICS_ALLOWED_NETWORKS`` only (empty by
default: closed). A scraper is configured with an address, rarely with a secret, and an API
key good enough for this would be an admin's, good for everything else too; the numbers say
how much is waiting, never what or for whom. So the network is the credential, as it is for
most Prometheus targets.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from signoff import errors
from signoff.domain import metrics
from signoff.services import metrics as metrics_service
from signoff.web.deps import RuntimeDep, is_client_in

router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def read_metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text format, for clients in ``SIGNOFF_METRICS_ALLOWED_NETWORKS``;
    ``403 address_not_allowed`` for anyone else."""
    client = (request.client.host, request.client.port) if request.client else None
    if not is_client_in(client, runtime.settings.metrics_allowed_networks):
        raise errors.AddressNotAllowed(
            "metrics are open only to the networks in SIGNOFF_METRICS_ALLOWED_NETWORKS"
        )
    body = metrics.exposition(metrics_service.snapshot(runtime.db))
    return Response(body, media_type=metrics.CONTENT_TYPE)
