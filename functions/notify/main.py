"""Notification function: logs each fired alert once and delivers it on the user's channels."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def notify(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_notify

    run_handler(event, handle_notify, "notify")
