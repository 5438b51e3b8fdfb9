"""The website tracker in a real browser against the real local stack.

Given test shop pages served from 127.0.0.1 with the tracker snippet pointing at the local collect function,
when headless Chromium walks through a visit (ad landing, product view, search, cart, order, sign-up),
then exactly those rows land in the warehouse under the browser's first-party anonymous id.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

PAGES = Path(__file__).resolve().parent / "pages"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LANDING_QUERY = "utm_source=naver&utm_medium=cpc&utm_campaign=winter&gclid=TEST123"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
RAW_TABLES = ("page", "land", "event", "conv", "user")


# -- the browser ------------------------------------------------------------------------------------
def _find(names: tuple[str, ...], env: str) -> str | None:
    if os.environ.get(env):
        return shutil.which(os.environ[env])
    return next((found for name in names if (found := shutil.which(name))), None)


CHROMIUM = _find(("chromium", "chromium-browser", "google-chrome"), "CDP_CHROMIUM")
CHROMEDRIVER = _find(("chromedriver",), "CDP_CHROMEDRIVER")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
MISSING = (
    "Chromium and chromedriver are needed for the tracker's browser test: "
    "`make browser` (apt-get install chromium chromium-driver), or set CDP_CHROMIUM / CDP_CHROMEDRIVER"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    # decided before any fixture: without a browser the local stack is not started for nothing
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not IN_CI, reason=MISSING),
]


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Paths of Chromium and its driver; in CI a missing browser is a failure, not a skip."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(MISSING)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile: no cookies from other tests)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def browse_as_desktop_chrome(driver: Any) -> str:
    """Headless Chromium says HeadlessChrome, which the collector rightly files as a bot; a shopper's
    Chrome says Chrome. Same browser, the user agent of a person's."""
    agent = driver.execute_script("return navigator.userAgent").replace("HeadlessChrome", "Chrome")
    driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": agent})
    return agent


# -- the shop ---------------------------------------------------------------------------------------
class _ShopHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/browser/pages with the snippet's placeholders filled in."""

    replacements: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
        page = (PAGES / name).resolve()
        if page.parent != PAGES or not page.is_file():
            self.send_error(404)
            return
        text = page.read_text(encoding="utf-8")
        for key, value in self.replacements.items():
            text = text.replace(key, value)
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def shop(local_stack: Any) -> Iterator[str]:
    """The test shop on a free port of 127.0.0.1, its pages loading the tracker from the collect function."""
    replacements = {"{{COLLECT_URL}}": local_stack.collect_url.rstrip("/"), "{{WRITE_KEY}}": local_stack.write_key}
    handler = type("ShopHandler", (_ShopHandler,), {"replacements": replacements})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="shop", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- helpers ----------------------------------------------------------------------------------------
def wait_for(condition: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_tracker(driver)


def wait_tracker(driver: Any) -> None:
    wait_for(
        lambda: driver.execute_script("return !!(window.cdp && window.cdp.__cdpTracker)"),
        what=f"the tracker on {driver.current_url}",
    )


def click_through(driver: Any, element_id: str, expected_path: str) -> None:
    """Clicks a link or button that loads another page and waits for the tracker there."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()
    wait_for(lambda: expected_path in driver.current_url, what=f"navigation to {expected_path}")
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", what="page load")
    wait_tracker(driver)


def flush(driver: Any) -> None:
    """Awaits the tracker's own flush: the requests it sends now have been answered."""
    driver.execute_async_script("var done = arguments[arguments.length - 1]; window.cdp.flush().then(done, done);")


def anonymous_id_of(driver: Any) -> str:
    cookie = driver.get_cookie("_cdp_aid")
    assert cookie is not None, "the tracker set no _cdp_aid cookie"
    return cookie["value"]


def rows_of(stack: Any, anonymous_id: str) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for name in RAW_TABLES:
        found[name] = stack.query(
            f"SELECT * FROM raw.{name} WHERE site_id = @site AND anonymous_id = @anon ORDER BY event_time, event_id",
            {"site": stack.site_id, "anon": anonymous_id},
        )
    return found


def wait_rows(stack: Any, anonymous_id: str, expected: dict[str, int], timeout: float = 60.0) -> dict[str, Any]:
    """Drains until the expected number of rows per table has landed, then once more so that any extra
    (a duplicate, a stray event) would show too."""
    deadline = time.monotonic() + timeout
    while True:
        stack.drain()
        rows = rows_of(stack, anonymous_id)
        counts = {name: len(rows[name]) for name in expected}
        if all(counts[name] >= expected[name] for name in expected):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"rows for {anonymous_id} after {timeout}s: {counts}, expected {expected}")
        time.sleep(0.3)
    time.sleep(1.0)
    stack.drain()
    return rows_of(stack, anonymous_id)


def rejected_for(stack: Any, anonymous_id: str) -> list[dict[str, Any]]:
    return stack.query(
        "SELECT reason_code, reason, payload FROM ops.rejected WHERE STRPOS(payload, @anon_text) > 0",
        {"anon_text": anonymous_id},
    )


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        assert row[key] not in out, f"two rows with {key}={row[key]!r}: {rows}"
        out[row[key]] = row
    return out


# -- the tests --------------------------------------------------------------------------------------
def test_a_visit_from_an_ad_to_a_sign_up_lands_in_the_warehouse(browser: Any, shop: str, local_stack: Any) -> None:
    from selenium.webdriver.common.by import By

    user_id = f"member-{uuid.uuid4().hex[:12]}"
    email = f"{user_id}@example.com"
    agent = browse_as_desktop_chrome(browser)

    # Given a shopper who arrives from a Naver ad
    landing = f"{shop}/index.html?{LANDING_QUERY}"
    open_page(browser, landing)
    anonymous_id = anonymous_id_of(browser)
    assert UUID4.match(anonymous_id), anonymous_id

    # When they view a product (queued before the tracker loaded), add it to the cart, search (a SPA view)
    click_through(browser, "product-link", "/product.html")
    product_url = f"{shop}/product.html?id=P-100"
    browser.find_element(By.ID, "add-to-cart").click()
    browser.find_element(By.ID, "search-input").send_keys("wool coat")
    browser.find_element(By.ID, "search-submit").click()
    wait_for(lambda: "/search.html" in browser.current_url, what="the SPA search view")
    # ... check out (the order is tracked as the page leaves) and sign up
    click_through(browser, "checkout-link", "/checkout.html")
    click_through(browser, "place-order", "/signup.html")
    browser.find_element(By.ID, "user-id").send_keys(user_id)
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "phone").send_keys("010-1234-5678")
    browser.find_element(By.ID, "name").send_keys("김겨울")
    browser.find_element(By.ID, "signup-submit").click()
    wait_for(lambda: browser.find_element(By.ID, "done").is_displayed(), what="the sign-up to finish")
    flush(browser)

    # The id is the same across pages, in the cookie and in the fallback storage; the user id is kept
    assert anonymous_id_of(browser) == anonymous_id
    assert browser.execute_script("return window.localStorage.getItem('_cdp_aid')") == anonymous_id
    assert browser.execute_script("return window.cdp.anonymousId()") == anonymous_id
    assert browser.get_cookie("_cdp_uid")["value"] == user_id
    browser.get("about:blank")  # pagehide: anything still queued goes now

    # Then exactly the visit's rows are in the warehouse, all under the browser's anonymous id
    rows = wait_rows(local_stack, anonymous_id, {"page": 5, "land": 1, "event": 3, "conv": 2, "user": 1})
    assert {name: len(found) for name, found in rows.items()} == {
        "page": 5,
        "land": 1,
        "event": 3,
        "conv": 2,
        "user": 1,
    }
    everything = [row for found in rows.values() for row in found]
    for row in everything:
        assert row["anonymous_id"] == anonymous_id
        assert row["site_id"] == local_stack.site_id
        assert row["device_type"] == "desktop", row["user_agent"]
        assert row["browser"] == "Chrome"
        assert row["os"] == "Linux"
        assert row["user_agent"] == agent
        assert row["library"] == "cdp-tracker/1.0.0"
        assert row["locale"] and row["timezone"]
        assert row["sent_at"] is not None and row["original_timestamp"] is not None
    assert len({row["event_id"] for row in everything}) == 12 - 1  # the landing is also a page view
    assert {row["event_id"] for row in rows["land"]} <= {row["event_id"] for row in rows["page"]}

    # page views: one per page load, and the SPA search view with the previous URL as its referrer
    pages = by(rows["page"], "page_path")
    assert set(pages) == {"/index.html", "/product.html", "/search.html", "/checkout.html", "/signup.html"}
    assert pages["/index.html"]["page_url"] == landing
    assert pages["/index.html"]["referrer"] is None
    assert pages["/index.html"]["title"] == "Winter Shop"
    assert pages["/index.html"]["search"] == f"?{LANDING_QUERY}"
    assert pages["/product.html"]["referrer"] == landing
    assert pages["/search.html"]["name"] == "Search Results"
    assert pages["/search.html"]["referrer"] == product_url
    assert pages["/search.html"]["page_url"] == f"{shop}/search.html?q=wool%20coat"
    assert pages["/search.html"]["title"] == "Search: wool coat - Winter Shop"
    assert pages["/checkout.html"]["referrer"] == f"{shop}/search.html?q=wool%20coat"

    # the landing: a paid Naver click
    (land,) = rows["land"]
    assert land["page_path"] == "/index.html"
    assert land["medium"] == "ad"
    assert land["source"] == "naver"
    assert (land["utm_source"], land["utm_medium"], land["utm_campaign"]) == ("naver", "cpc", "winter")
    assert land["campaign"] == "winter"
    assert (land["click_id_type"], land["click_id"]) == ("gclid", "TEST123")

    # product view, search and add to cart
    events = by(rows["event"], "event_type")
    assert set(events) == {"product_view", "search", "add_to_cart"}
    view, added, search = events["product_view"], events["add_to_cart"], events["search"]
    assert (view["event_name"], view["product_id"], view["product_name"]) == ("Product Viewed", "P-100", "Wool Coat")
    assert (view["price"], view["category"], view["page_path"]) == (159000.0, "Outerwear", "/product.html")
    assert (added["event_name"], added["product_id"], added["price"]) == ("Product Added", "P-100", 159000.0)
    assert (search["event_name"], search["search_keyword"]) == ("Products Searched", "wool coat")
    assert json.loads(search["raw"])["context"]["page"]["referrer"] == product_url
    assert search["page_path"] == "/search.html"
    assert all(row["user_id"] is None for row in rows["event"])  # before the sign-up

    # the order and the sign-up
    convs = by(rows["conv"], "conv_type")
    assert set(convs) == {"order", "signup"}
    placed = convs["order"]
    assert (placed["event_name"], placed["order_id"]) == ("Order Completed", "ORD-1001")
    assert (placed["revenue"], placed["currency"]) == (189000.0, "KRW")
    assert placed["product_names"] == "Wool Coat | Cashmere Scarf"
    assert [p["product_id"] for p in json.loads(placed["products"])] == ["P-100", "P-200"]
    assert placed["user_id"] is None
    signup = convs["signup"]
    assert (signup["event_name"], signup["user_id"]) == ("Signed Up", user_id)
    assert json.loads(signup["properties"]) == {"method": "email"}  # who signed up goes to identify

    # who they are
    (user,) = rows["user"]
    assert (user["call"], user["user_id"]) == ("identify", user_id)
    assert (user["email"], user["phone"], user["name"]) == (email, "010-1234-5678", "김겨울")

    assert rejected_for(local_stack, anonymous_id) == []


def test_without_beacon_and_fetch_events_still_land_through_the_pixel(
    browser: Any, shop: str, local_stack: Any
) -> None:
    from selenium.webdriver.common.by import By

    # Given a page on which neither sendBeacon nor fetch exists
    open_page(browser, f"{shop}/pixel.html")
    assert browser.execute_script("return typeof navigator.sendBeacon + '/' + typeof window.fetch") == (
        "undefined/undefined"
    )
    anonymous_id = anonymous_id_of(browser)

    # When 40 events are tracked at once (more than one pixel URL can carry)
    browser.find_element(By.ID, "burst").click()
    flush(browser)

    # Then they went as GIF requests, each URL under 8 KB, and nothing was POSTed
    sent = browser.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(function (e) { return e.name.indexOf('/v1/') >= 0; })"
        ".map(function (e) { return [e.initiatorType, e.name]; })"
    )
    pixels = [url for kind, url in sent if "/v1/pixel/batch?data=" in url]
    assert len(pixels) >= 3, sent
    assert all(kind == "img" for kind, _ in sent), sent
    assert all(len(url) < 8192 for url in pixels), [len(url) for url in pixels]
    browser.get("about:blank")

    # and every event landed, once
    rows = wait_rows(local_stack, anonymous_id, {"page": 1, "land": 1, "event": 40, "conv": 0, "user": 0})
    assert {name: len(found) for name, found in rows.items()} == {
        "page": 1,
        "land": 1,
        "event": 40,
        "conv": 0,
        "user": 0,
    }
    assert rows["land"][0]["medium"] == "direct"
    events = rows["event"]
    assert {row["event_name"] for row in events} == {"Lookbook Viewed"}
    assert {row["event_type"] for row in events} == {"custom"}
    assert sorted(json.loads(row["properties"])["seq"] for row in events) == list(range(40))
    for row in events:  # non-ASCII text survives the base64url round trip
        properties = json.loads(row["properties"])
        assert properties["note"] == "x" * 300 + f" 겨울 코트 {properties['seq']}"
    # an unmodified headless Chromium announces itself, and the collector files it as a bot
    assert {row["device_type"] for row in events} == {"bot"}
    assert rejected_for(local_stack, anonymous_id) == []


def test_wire_format_queue_and_guards(browser: Any, shop: str, local_stack: Any) -> None:
    """The calls' Segment-spec shape as sent, the queue stub, junk ids refused, reset, and no exceptions."""
    browse_as_desktop_chrome(browser)
    open_page(browser, f"{shop}/contract.html?utm_source=newsletter&utm_medium=email&utm_campaign=jan&utm_term=coat")
    anonymous_id = anonymous_id_of(browser)

    # Calls that must neither throw nor send junk
    outcome = browser.execute_script(
        """
        var errors = [];
        var attempt = function (f) { try { f(); } catch (e) { errors.push(String(e)); } };
        attempt(function () { cdp.track(); });
        attempt(function () { cdp.track({not: 'a name'}); });
        attempt(function () { cdp.identify('undefined', {email: 'junk@example.com'}); });
        attempt(function () { cdp.alias('null'); });
        attempt(function () { var loop = {}; loop.self = loop; cdp.track('Circular', loop); });
        attempt(function () { cdp.push(['noSuchCall', 1]); cdp.push(null); });
        attempt(function () { cdp.track('Too Big', {blob: new Array(40000).join('y')}); });
        var junkUser = cdp.userId();
        attempt(function () { cdp.identify('crm-42', {crmId: 'C-42', gender: 'F', birthYear: 1990}); });
        attempt(function () { cdp.push(['track', 'Pushed After Load', {n: 1}]); });
        return {errors: errors, junkUser: junkUser, user: cdp.userId()};
        """
    )
    assert outcome == {"errors": [], "junkUser": None, "user": "crm-42"}
    flush(browser)
    # A 503 is retried (after a backoff) with the same messageId
    browser.execute_script("window.__failNext = 1; cdp.track('Retried After 503', {n: 2});")
    flush(browser)

    posted = browser.execute_script("return window.__sent")
    assert posted, "nothing was sent through fetch"
    for request in posted:
        assert request["url"] == f"{local_stack.collect_url.rstrip('/')}/v1/batch"
        assert request["headers"] == {"Content-Type": "text/plain"}
        assert request["keepalive"] is True
    failed = [json.loads(request["body"]) for request in posted if request["failed"]]
    bodies = [json.loads(request["body"]) for request in posted if not request["failed"]]
    assert [[call["event"] for call in body["batch"]] for body in failed] == [["Retried After 503"]]
    retried = [call for body in bodies for call in body["batch"] if call.get("event") == "Retried After 503"]
    assert [call["messageId"] for call in retried] == [failed[0]["batch"][0]["messageId"]]
    for body in bodies:
        assert body["writeKey"] == local_stack.write_key
        assert ISO_TIME.match(body["sentAt"])
    calls = [call for body in bodies for call in body["batch"]]
    names = [(call["type"], call.get("event")) for call in calls]
    # the automatic page view first, then the queued call; the guarded calls sent nothing but 'Too Big' cut down
    assert names[:2] == [("page", None), ("track", "Queued Before Load")]
    assert ("track", "Circular") not in names
    assert names.count(("identify", None)) == 2  # the junk id is not kept, the traits still are
    assert ("track", "Pushed After Load") in names
    assert not any(call["type"] == "alias" for call in calls)

    for call in calls:
        assert UUID4.match(call["messageId"])
        assert call["anonymousId"] == anonymous_id
        assert ISO_TIME.match(call["originalTimestamp"])
        context = call["context"]
        assert set(context["page"]) == {"url", "path", "referrer", "title", "search"}
        assert context["page"]["path"] == "/contract.html"
        assert context["library"] == {"name": "cdp-tracker", "version": "1.0.0"}
        assert context["campaign"] == {"source": "newsletter", "medium": "email", "name": "jan", "term": "coat"}
        assert context["timezone"] and context["locale"] and context["userAgent"]
        assert set(context["screen"]) == {"width", "height", "density"}
        assert len(json.dumps(call).encode()) <= 32 * 1024
    page = calls[0]
    assert (
        page["properties"]["url"]
        == f"{shop}/contract.html?utm_source=newsletter&utm_medium=email&utm_campaign=jan&utm_term=coat"
    )
    assert page["properties"]["title"] == "Contract - Winter Shop"
    big = next(call for call in calls if call.get("event") == "Too Big")
    assert len(big["properties"]["blob"]) == 1000
    identified = [call for call in calls if call["type"] == "identify"]
    assert "userId" not in identified[0] and identified[1]["userId"] == "crm-42"
    assert [call.get("userId") for call in calls if call.get("event") == "Pushed After Load"] == ["crm-42"]

    # reset: a new anonymous id, no user id
    browser.execute_script("cdp.reset()")
    assert anonymous_id_of(browser) != anonymous_id
    assert browser.execute_script("return cdp.userId()") is None
    assert browser.get_cookie("_cdp_uid") is None

    # and the collector took all of it: the landing was an email, the identify rows hold the traits
    browser.get("about:blank")
    rows = wait_rows(local_stack, anonymous_id, {"page": 1, "land": 1, "event": 4, "conv": 0, "user": 2})
    assert {name: len(found) for name, found in rows.items()} == {
        "page": 1,
        "land": 1,
        "event": 4,
        "conv": 0,
        "user": 2,
    }
    assert (rows["land"][0]["medium"], rows["land"][0]["search_keyword"]) == ("email", "coat")
    users = sorted(rows["user"], key=lambda row: row["user_id"] or "")
    assert (users[0]["user_id"], users[0]["email"]) == (None, "junk@example.com")
    assert (users[1]["user_id"], users[1]["crm_id"], users[1]["gender"], users[1]["birth_year"]) == (
        "crm-42",
        "C-42",
        "F",
        1990,
    )
    assert rejected_for(local_stack, anonymous_id) == []
