"""``PARLEY_FRAME_ANCESTORS``: the pages that may frame Parley, checked strictly at start-up and
written into the page policy (``X-Frame-Options`` then not sent)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from parley.settings import Settings
from tests.support.server import run_server


@pytest.mark.parametrize(
    "bad",
    ["*", "'none'", "https://app.example.org/path", "app.example.org", "https://a.org;x", "data:"],
)
def test_a_source_that_is_not_an_origin_stops_the_start(bad: str) -> None:
    with pytest.raises(ValidationError, match="PARLEY_FRAME_ANCESTORS"):
        Settings(frame_ancestors=bad)


@pytest.mark.asyncio
async def test_the_listed_pages_may_frame_parley_and_others_not(tmp_path: Path) -> None:
    sources = "'self',https://app.example.org,https://*.example.net:8443"
    framed = Settings(data_dir=tmp_path / "framed", media_engine="none", frame_ancestors=sources)
    async with run_server(framed) as server, httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/r/abc")
        policy = page.headers["content-security-policy"]
        expected = "frame-ancestors 'self' https://app.example.org https://*.example.net:8443"
        assert expected in policy and "x-frame-options" not in page.headers
        script = await http.get("/embed.js")
        assert script.status_code == 200 and "ParleyMeeting" in script.text
    default = Settings(data_dir=tmp_path / "default", media_engine="none")
    async with run_server(default) as server, httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/r/abc")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
