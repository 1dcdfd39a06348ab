"""Screen function: evaluates one shard of a universe as of a date; the last shard merges and ranks."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def screen(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_screen_shard

    run_handler(event, handle_screen_shard, "screen")
