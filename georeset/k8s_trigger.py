"""Deferrable waiting on the training Job: an Airflow trigger that polls the Job's status in the triggerer, so the
``train`` task holds no worker slot while a multi-day Job runs.

The trigger yields one event: ``{"state": "succeeded" | "failed" | "missing" | "timeout", "name", "namespace",
"logs"}`` (``logs``: the pods' last lines when the Job did not succeed, read before anyone deletes them). The task
resumes in ``execute_complete``, which deletes the Job and Service whatever the state (dags/_georeset_train.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["KubernetesJobTrigger"]


class KubernetesJobTrigger(BaseTrigger):
    def __init__(self, name: str, namespace: str, completions: int, timeout_s: float, poll_s: float = 30.0,
                 api_url: str = "") -> None:
        super().__init__()
        self.name, self.namespace, self.completions = name, namespace, int(completions)
        self.timeout_s, self.poll_s, self.api_url = float(timeout_s), float(poll_s), api_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("georeset.k8s_trigger.KubernetesJobTrigger",
                {"name": self.name, "namespace": self.namespace, "completions": self.completions,
                 "timeout_s": self.timeout_s, "poll_s": self.poll_s, "api_url": self.api_url})

    def _api(self) -> Any:
        import os

        from georeset.k8s_launcher import KubeAPI

        env = dict(os.environ)
        if self.api_url:
            env["GEORESET_K8S_API"] = self.api_url
        return KubeAPI.from_env(env)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from georeset.k8s_launcher import job_state, logs_tail

        api = self._api()
        deadline = time.monotonic() + self.timeout_s
        event = {"name": self.name, "namespace": self.namespace, "logs": ""}
        while True:
            state = await asyncio.to_thread(job_state, api, self.namespace, self.name, self.completions)
            if state == "running" and time.monotonic() > deadline:
                state = "timeout"
            if state != "running":
                if state != "succeeded":
                    event["logs"] = await asyncio.to_thread(logs_tail, api, self.namespace, self.name)
                yield TriggerEvent({**event, "state": state})
                return
            await asyncio.sleep(self.poll_s)
