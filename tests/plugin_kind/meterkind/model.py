"""The SimPy side of ``kind: meter``."""

from __future__ import annotations

from simpy import Timeout

from simulator.components.base import BuildContext, Component, Handler
from simulator.messages import ERROR, OK, Request


class Meter(Component):
    """Serves each request after ``service_time``; counts them; refuses while crashed."""

    def __init__(self, group: str, index: int, params: object, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self.count = 0
        self.up = True
        self._code = ctx.recorder.instance_code(group, self.name)
        self._readings = ctx.recorder.table("meter_readings")
        self._instance = self._readings.code("instance", self.name)

    def handle(self, req: Request, op: str) -> Handler:
        if not self.up:
            return ERROR
        yield Timeout(self.env, self.params.service_time)
        self.count += 1
        self._readings.append(self._code, self._instance, req.id, self.env.now, self.count)
        return OK

    def reset(self) -> None:
        self.count = 0

    def crash(self, black_hole: bool) -> None:
        self.up = False

    def recover(self) -> None:
        self.up = True
