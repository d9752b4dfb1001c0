"""The console as a person uses it: sign in, the map, a device's chart, the inbox
(acknowledge, resolve, search), live anomalies, gateways; axe-core on every page."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from playwright.sync_api import Page, expect

from storage import alerts
from storage.database import connect
from storage.episodes import EpisodeChange, write_episodes
from tests.api.conftest import NIGHT
from tests.console.conftest import (
    Console,
    assert_accessible,
    metrics,
    run_async,
    sign_in,
    wait_live,
)
from tests.helpers import query


def test_sign_in_page_and_a_wrong_key(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, "sign-in")
    page.get_by_label("API key").fill("ctk_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked API key")
    expect(page.get_by_role("navigation", name="Console")).to_be_hidden()


def test_the_map_shows_every_placed_device(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    expect(page.get_by_role("heading", name="Map")).to_be_visible()
    # the city: four devices with a position (sl-x was never announced, has none)
    expect(page.locator("#map-status")).to_contain_text("4 devices; 4 in view")
    drawn = metrics(page)
    assert drawn["mapRenderedMs"] > 0 and drawn["mapInteractiveMs"] >= drawn["mapRenderedMs"]
    # the lamp that is out (an open high anomaly) is drawn in its state's colour
    red = page.evaluate(
        """() => { const c = document.querySelector('.device-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4)
          if (d[i] === 0xb9 && d[i+1] === 0x1c && d[i+2] === 0x1c) n++;
        return n; }"""
    )
    assert red > 0
    assert_accessible(page, "map")
    # a click on the red octagon opens that device's page
    x, y = page.evaluate(
        """() => { const c = document.querySelector('.device-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4)
          if (d[i] === 0xb9 && d[i+1] === 0x1c && d[i+2] === 0x1c) {
            const k = i / 4, r = devicePixelRatio;
            return [(k % c.width) / r, Math.floor(k / c.width) / r]; } }"""
    )
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x + 1, box["y"] + y + 2)
    expect(page.get_by_role("heading", name="Device sl-1")).to_be_visible()
    page.go_back()
    expect(page.locator("#map-status")).to_contain_text("4 devices")
    page.get_by_label("State").select_option("high")
    expect(page.locator("#map-status")).to_contain_text("1 devices")
    page.get_by_label("State").select_option("")
    page.get_by_label("Kind").select_option("streetlight")
    expect(page.locator("#map-status")).to_contain_text("2 devices")
    page.get_by_role("button", name="List devices in view").click()
    rows = page.locator("#selection tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("sl-1")


def test_the_area_selection_lists_its_devices(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    expect(page.locator("#map-status")).to_contain_text("4 devices")
    page.get_by_role("button", name="Select an area").click()
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    expect(page.locator("#selection")).to_contain_text("4 devices")
    expect(page.locator("#selection tbody tr")).to_have_count(4)


def test_a_device_chart_with_its_episode(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    page.goto("/#/device/sl-2")
    expect(page.get_by_role("heading", name="Device sl-2")).to_be_visible()
    expect(page.get_by_role("table", name="Latest values")).to_contain_text("voltage_v")
    page.get_by_label("Metric").select_option("voltage_v")
    page.get_by_label("Range, up to the last value").select_option("6h")
    caption = page.locator("#chart-caption")
    expect(caption).to_contain_text("1m buckets")
    expect(caption).to_contain_text("1 anomaly episode(s) shaded")
    points = int(re.search(r"(\d+) points", caption.inner_text())[1])  # type: ignore[index]
    (n,) = query_one(
        console.database_url,
        "SELECT count(DISTINCT date_trunc('minute', r.time)) FROM metric_values r"
        " JOIN devices d ON d.id = r.device JOIN metrics m ON m.id = r.metric"
        " WHERE d.device_id = 'sl-2' AND m.name = 'voltage_v'",
    )
    assert points == n  # every minute of the 160 the surge's hours had
    expect(page.locator("#chart canvas").first).to_be_visible()
    expect(page.get_by_role("table", name="History: anomaly episodes")).to_contain_text("deviation")
    assert_accessible(page, "device")
    page.get_by_label("Range, up to the last value").select_option("365d")
    expect(caption).to_contain_text("1d buckets")


def test_acknowledge_then_resolve_then_find_it(page: Page, console: Console) -> None:
    sign_in(page, console.admin_key)
    page.get_by_role("link", name="Anomalies").click()
    inbox = page.get_by_role("table", name="Anomalies, newest first")
    expect(inbox).to_contain_text("lamp_out")
    assert_accessible(page, "anomalies")
    ack = page.get_by_role("button", name=re.compile(r"^Acknowledge anomaly \d+ on sl-1$"))
    ack.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Comment (optional)").fill("crew sent, ticket 4411")
    assert_accessible(page, "acknowledge")
    dialog.get_by_role("button", name="Confirm").click()
    row = inbox.locator("tr", has_text="sl-1")
    expect(row).to_contain_text("Acknowledged by test admin (ctk_")
    expect(row).to_contain_text("crew sent, ticket 4411")
    (by, at) = query_one(
        console.database_url,
        "SELECT acked_by, acked_at FROM episodes WHERE detector = 'lamp_out'",
    )
    assert by.startswith("test admin (ctk_") and at is not None
    row.get_by_role("button", name=re.compile("^Resolve")).click()
    dialog.get_by_label("Comment (optional)").fill("lamp replaced")
    dialog.get_by_role("button", name="Confirm").click()
    expect(inbox.locator("tr", has_text="sl-1")).to_contain_text("Resolved by test admin")
    page.get_by_label("Status").select_option("resolved")
    page.get_by_label("Search device, gateway or comment").fill("replaced")
    page.get_by_role("button", name="Search").click()
    expect(inbox.locator("tbody tr")).to_have_count(1)
    expect(inbox).to_contain_text("lamp replaced")


def test_a_new_anomaly_appears_live_within_two_seconds(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    page.get_by_role("link", name="Anomalies").click()
    expect(page.get_by_role("table", name="Anomalies, newest first")).to_be_visible()
    wait_live(page)
    committed = _open_episode(console.database_url, "env-1", "no2_ppb", "live_test")
    row = page.locator("#inbox-rows tr", has_text="live_test")
    row.wait_for(timeout=2000)
    seen = time.monotonic()
    assert seen - committed < 2.0
    expect(row).to_contain_text("env-1")
    expect(page.locator("#announcer")).to_contain_text("New high anomaly on env-1: live_test")


def test_gateways_worst_first(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    page.get_by_role("link", name="Gateways").click()
    rows = page.get_by_role("table", name="Gateways").locator("tbody tr")
    expect(rows).to_have_count(2)
    # gw-s went offline, lost two seqs and sent one malformed message
    expect(rows.nth(0)).to_contain_text("gw-s")
    expect(rows.nth(0)).to_contain_text("offline")
    expect(rows.nth(1)).to_contain_text("gw-n")
    assert_accessible(page, "gateways")


def test_everything_by_keyboard(page: Page, console: Console) -> None:
    page.goto("/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(console.reader_key)
    page.keyboard.press("Enter")
    expect(page.locator("#map-status")).to_contain_text("4 devices")
    expect(page.locator("#main")).to_be_focused()  # the view moves focus to its content
    page.keyboard.press("Shift+Tab")  # from the page's main region back into the header
    for _ in range(10):
        if page.evaluate("document.activeElement.textContent") == "Gateways":
            break
        page.keyboard.press("Shift+Tab")
    focused = page.evaluate(
        "() => [document.activeElement.textContent, getComputedStyle(document.activeElement)"
        ".outlineStyle]"
    )
    assert focused == ["Gateways", "solid"]  # reached by keyboard, and the focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Gateways")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    expect(page.get_by_role("heading", name="Gateways")).to_be_visible()


def _open_episode(url: str, device: str, metric: str, detector: str) -> float:
    """An episode opened through the ingester's write path; when it committed."""

    async def write() -> float:
        ((dev, met),) = await query(
            url,
            "SELECT d.id, m.id FROM devices d, metrics m WHERE d.device_id = %s AND m.name = %s",
            (device, metric),
        )
        start_us = int(NIGHT.timestamp() * 1e6) + 10**12
        change = EpisodeChange(dev, met, detector, True, start_us, start_us, 0.99, 99.0)
        conn = await connect(url)
        try:
            await write_episodes(conn, [change])
        finally:
            await conn.close()
        return time.monotonic()

    return run_async(write())


def query_one(url: str, sql: str) -> tuple:  # type: ignore[type-arg]
    return run_async(query(url, sql))[0]


def test_admins_manage_keys_readers_do_not(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    expect(page.get_by_role("link", name="API keys")).to_be_hidden()
    expect(page.get_by_role("link", name="Alerts")).to_be_hidden()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, console.admin_key)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name (who will use it)").fill("day desk")
    page.get_by_label("Role").select_option("reader")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("ctk_")
    ((role, name),) = run_async(
        query(
            console.database_url,
            "SELECT role, name FROM api_keys WHERE prefix = %s AND revoked_at IS NULL",
            (key[:10],),
        )
    )
    assert (role, name) == ("reader", "day desk")
    assert_accessible(page, "keys")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke key {key[:10]} (day desk)").click()
    expect(page.locator(f"tr:has-text('{key[:10]}')")).to_contain_text("revoked")
    ((revoked,),) = run_async(
        query(
            console.database_url, "SELECT revoked_at FROM api_keys WHERE prefix = %s", (key[:10],)
        )
    )
    assert revoked is not None


def test_admins_see_failed_alert_deliveries(page: Page, console: Console) -> None:
    async def a_failed_delivery() -> None:
        conn = await connect(console.database_url, autocommit=True)
        try:
            endpoint = await alerts.create_endpoint(conn, url="https://ops.example/h", name="ops")
            fields = dict.fromkeys(("kind", "metric", "min_severity", "gateway"))
            box = dict.fromkeys(("min_lon", "min_lat", "max_lon", "max_lat"))
            await alerts.create_rule(
                conn,
                {**fields, **box, "detector": "console_alert", "changes": ["opened"],
                 "endpoint": endpoint["id"]},
            )  # fmt: skip
            ((gw,),) = await (
                await conn.execute("SELECT id FROM gateways WHERE gateway_id = 'gw-s'")
            ).fetchall()
            t = int(NIGHT.timestamp() * 1e6)
            silent = EpisodeChange(None, None, "console_alert", True, t, t, 0.9, 0.0, gw)
            await write_episodes(conn, [silent])
            (due,) = await alerts.claim_due(conn, limit=1, lease=timedelta(seconds=1))
            await alerts.retry_later(conn, due.id, error="HTTP 503", delay=None)
        finally:
            await conn.close()

    run_async(a_failed_delivery())
    sign_in(page, console.admin_key)
    page.get_by_role("link", name="Alerts").click()
    failed = page.get_by_role("table", name="Failed deliveries")
    expect(failed).to_contain_text("HTTP 503")
    expect(failed).to_contain_text("https://ops.example/h")
    expect(page.get_by_role("table", name="Rules")).to_contain_text("console_alert")
    assert_accessible(page, "alerts")


def test_a_gateway_going_offline_shows_on_the_map_live(page: Page, console: Console) -> None:
    sign_in(page, console.reader_key)
    page.get_by_label("State").select_option("offline")
    status = page.locator("#map-status")
    page.locator('#map-status[data-filters="state=offline"]').wait_for()
    wait_live(page)
    before = int(status.inner_text().split(" ")[0])  # gw-s's, less those with an anomaly

    def set_status(value: str) -> None:
        run_async(
            query(
                console.database_url,
                "UPDATE gateways SET status = %s WHERE gateway_id = 'gw-n' RETURNING id",
                (value,),
            )
        )

    # gw-n's devices without an open anomaly (which ranks above offline) join them
    ((joining,),) = run_async(
        query(
            console.database_url,
            "SELECT count(*) FROM devices d JOIN gateways g ON g.id = d.gateway"
            " WHERE g.gateway_id = 'gw-n' AND d.latitude IS NOT NULL AND NOT EXISTS ("
            " SELECT 1 FROM episodes e WHERE e.device = d.id AND e.ended_at IS NULL"
            " AND e.resolved_at IS NULL)",
        )
    )
    assert joining >= 1
    set_status("offline")  # as the ingester records a gateway's last will
    try:
        expect(status).to_contain_text(f"{before + joining} devices")
        expect(page.locator("#announcer")).to_contain_text("Gateway gw-n is offline")
    finally:
        set_status("online")
    expect(status).to_contain_text(f"{before} devices")
