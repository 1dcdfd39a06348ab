"""Dead-letter function: a message that failed on every delivery attempt is made visible (its job
failed with the reason, an undelivered alert logged with its channels failed, bars stored for the
next sweep)."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def dead_letter(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_dead_letter

    run_handler(event, handle_dead_letter, "dead_letter")
