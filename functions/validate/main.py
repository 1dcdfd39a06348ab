"""Validation function: validator + smoke run; stores the strategy or sends feedback to generation."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def validate(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_validate

    run_handler(event, handle_validate, "validate")
