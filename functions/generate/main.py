"""Generation function: one generation attempt per Pub/Sub message; the candidate goes to validation."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def generate(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_generate

    run_handler(event, handle_generate, "generate")
