"""Bars function: market-data events (``stratagem.bars.v1``) trigger alert evaluation for the
symbols whose bars arrived - the event-driven half of second-level alerting."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def alert_bars(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_alert_bars

    run_handler(event, handle_alert_bars, "alert_bars")
