"""Backtest function: evaluates one shard (symbols x range); the last shard to land merges the job."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def backtest(event: CloudEvent) -> None:
    from stratagem.function_runtime import run_handler
    from stratagem.service import handle_backtest_shard

    run_handler(event, handle_backtest_shard, "backtest")
