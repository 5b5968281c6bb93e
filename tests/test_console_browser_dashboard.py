"""The dashboard and the numbers screen in a real browser (Debian's Chromium, no network):
the charts draw under the console's Content-Security-Policy, the figures change as messages
are sent, without a reload, the theme switch draws them again, and the carrier links refresh
themselves, and the queue chart's tick labels stay apart at a phone's width.
``watch.assert_clean`` fails on any CSP refusal or script error."""

from __future__ import annotations

import time
import uuid

from browser import Watch
from console_client import with_password
from playwright.sync_api import Page, Route, expect
from test_console_browser import sign_in

from conftest import Server, make_user
from pigeon.accounts.service import create_account
from pigeon.db import Database


def test_the_charts_draw_and_a_send_shows_without_a_reload(db: Database, server: Server, page: Page,
                                                           watch: Watch) -> None:
    user = make_user(db, server, credits=100)
    with_password(db, user.user_id)
    page.emulate_media(color_scheme="light")
    sign_in(page, server, user.email)
    page.goto(f"{server.url}/console/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    charts = page.locator("[data-chart] canvas")
    expect(charts).to_have_count(4)
    sent, delivered = page.locator('dd[data-figure="sent"]'), page.locator('dd[data-figure="delivered"]')
    expect(sent).to_have_text("0")
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    user.wait_status(user.send("+27821230099", "watch the dashboard").json()["messageId"], "DELIVERED")
    expect(sent).to_have_text("1", timeout=15_000)
    expect(delivered).to_have_text("1", timeout=15_000)
    expect(page.locator('dd[data-figure="rate"]')).to_have_text("100 %")
    assert page.evaluate("window.__same_page") is True
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    page.get_by_role("button", name="Switch between light and dark theme").click()  # drawn again, dark
    expect(charts).to_have_count(4)
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: the charts fit its width
    page.wait_for_timeout(400)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert charts.first.bounding_box()["width"] <= 390  # type: ignore[index]
    watch.assert_clean()


SPY = """(() => {
  let real;
  window.pigeonCharts = [];
  Object.defineProperty(window, "uPlot", { configurable: true, get() { return real; }, set(made) {
    function Recorded(options, data, el) {
      const chart = new made(options, data, el);
      chart.pigeonName = el.getAttribute("data-chart");
      window.pigeonCharts.push(chart);
      return chart;
    }
    Object.assign(Recorded, made);
    Recorded.prototype = made.prototype;
    real = Recorded;
  } });
})()"""
"""Records every uPlot chart the page makes (uPlot draws its tick labels on a canvas: they are
no elements, so their boxes are worked out from the chart's own ticks, values and font)."""

LABELS = """(name) => {
  const chart = window.pigeonCharts.filter((c) => c.pigeonName === name && c.root.isConnected).pop();
  const ratio = window.devicePixelRatio || 1;
  const pen = document.createElement("canvas").getContext("2d");
  const plot = { left: chart.bbox.left / ratio, top: chart.bbox.top / ratio, height: chart.bbox.height / ratio };
  const boxes = [];
  chart.axes.forEach((axis) => {
    if (!axis.show || !axis._values) return;
    pen.font = axis.font[0];
    const size = axis.font[1] / ratio;
    const away = (axis.ticks.show ? axis.ticks.size : 0) + axis.gap;
    axis._values.forEach((value, i) => {
      if (value === null || value === "") return;
      const lines = String(value).split("\\n");
      const width = Math.max(...lines.map((line) => pen.measureText(line).width)) / ratio;
      const at = chart.valToPos(axis._splits[i], axis.scale);
      if (axis.side === 2) {  // below the plot, centred on its tick
        const top = plot.top + plot.height + away;
        boxes.push({ text: value, left: plot.left + at - width / 2, right: plot.left + at + width / 2,
                     top: top, bottom: top + size + (lines.length - 1) * size * axis.lineGap });
      } else {  // left of the plot, right-aligned, centred on its tick
        const right = plot.left - away;
        boxes.push({ text: value, left: right - width, right: right,
                     top: plot.top + at - size / 2, bottom: plot.top + at + size / 2 });
      }
    });
  });
  return { boxes: boxes, width: chart.width };
}"""


GAP = 4  # px between two labels side by side, at least: touching ones read as one


def test_the_queue_charts_labels_do_not_overlap_on_a_phone(db: Database, server: Server, page: Page,
                                                           watch: Watch) -> None:
    user = make_user(db, server, credits=100)
    with_password(db, user.user_id)
    page.set_viewport_size({"width": 390, "height": 800})
    page.add_init_script(SPY)
    # the widest labels: a queue of over a million, read at 11:57 pm in the browser's zone
    behind = page.evaluate("new Date().getTimezoneOffset()") * 60
    opened = time.time()
    late = opened // 86400 * 86400 + (23 * 60 + 57) * 60 + behind

    def widest(route: Route) -> None:
        answer = route.fetch()
        data = answer.json()
        data["now"] = int(late + time.time() - opened)
        data["queue"]["due"] = 1_234_567
        route.fulfill(response=answer, json=data)

    page.route("**/console/dashboard/data.json*", widest)
    sign_in(page, server, user.email)
    page.goto(f"{server.url}/console/dashboard")
    expect(page.locator('dd[data-figure="queue.due"]')).to_have_text("1,234,567")
    expect(page.locator('[data-chart="queue"] canvas')).to_have_count(1)
    found = page.evaluate(LABELS, "queue")
    boxes, width = found["boxes"], found["width"]
    assert len(boxes) >= 4, boxes  # the time's ticks and the queue's
    for box in boxes:
        assert box["left"] >= 0 and box["right"] <= width, f"{box['text']!r} is cut off: {box} in {width}px"
    for i, one in enumerate(boxes):
        for other in boxes[i + 1:]:
            apart = (one["right"] + GAP <= other["left"] or other["right"] + GAP <= one["left"]
                     or one["bottom"] <= other["top"] or other["bottom"] <= one["top"])
            assert apart, f"{one['text']!r} overlaps {other['text']!r}: {one} {other}"
    watch.assert_clean()


def test_the_operator_sees_the_carrier_links_refresh(db: Database, server: Server, page: Page,
                                                     watch: Watch) -> None:
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        user_id = create_account(session, email, master=True).user.id
    with_password(db, user_id)
    sign_in(page, server, email)
    page.goto(f"{server.url}/console/numbers")
    expect(page.get_by_role("heading", name="Carrier links")).to_be_visible()
    simulator = page.locator('#carriers tr[data-carrier="simulator"][data-state="bound"]')
    expect(simulator.first).to_be_visible(timeout=15_000)
    page.evaluate("document.querySelector('#carriers table').dataset.seen = 'yes'")
    expect(page.locator("#carriers table[data-seen]")).to_have_count(0, timeout=10_000)  # replaced by htmx
    expect(simulator.first).to_be_visible()
    assert float(simulator.first.get_attribute("data-age") or "99") < 6
    watch.assert_clean()
