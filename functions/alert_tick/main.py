"""Alert tick function: triggered by arriving bars and by the scheduler's sweep; evaluates
active strategies on the symbols with new bars and publishes each alert once."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def alert_tick(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_alert_tick

    run_handler(event, handle_alert_tick, "alert_tick")
