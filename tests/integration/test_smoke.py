from tests.support.clients import Client


async def test_host_creates_and_guest_joins(connect) -> None:
    host: Client = await connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Standup"})
    guest: Client = await connect()
    joined = await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
    assert joined["isHost"] is False
    assert [u["userName"] for u in joined["users"]] == ["Ada", "Bob"]
    assert (await host.next("userJoined"))["userName"] == "Bob"
