"""The scale checks of ``test_scale`` on a 3-master Redis Cluster: Redis' counters summed over
the masters, a room's channel a shard channel. A chat message costs the same output on two
nodes and on six, ``/health`` and the rooms list the same commands for few rooms and many."""

from __future__ import annotations

import pytest

from tests.cluster import test_scale as scale
from tests.cluster.test_scale import (  # noqa: F401  (collected here too, on the cluster)
    redis,
    test_a_message_costs_redis_the_same_on_two_nodes_and_on_six,
    test_health_and_the_rooms_list_cost_the_same_commands_for_few_and_many_rooms,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # four more nodes start here

REDIS_CLUSTER = True
NODE_ENV = scale.NODE_ENV
