"""`credlineage report --format html` drawn by a real browser (headless Chromium).

The page for the bundled trail and for a hostile trail is loaded with
`chromium --headless --dump-dom`, and the DOM the page's script built is
checked: the tree nodes and their marks, the findings opened by default,
search hits (through the page's `#q=` link), table links that land on tree
nodes, and that no string from a record became markup (no injected element,
attribute or script run). A screenshot is saved for the docs.

Runs with the standard library only: `python3 -m unittest discover tests/browser -v`.
Skips (with the reason) when Chromium is absent; `scripts/test.sh` installs
it. The CLI: $CREDLINEAGE_BIN, else built with cargo into $CARGO_TARGET_DIR.
`UPDATE_SCREENSHOT=1` writes docs/report-html.png.
"""

import html.parser
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cli():
    if os.environ.get("CREDLINEAGE_BIN"):
        return os.environ["CREDLINEAGE_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "credlineage"], cwd=ROOT, check=True)
    return str(target / "release" / "credlineage")


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def cls(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.walk()

    def find(self, tag=None, cls=None):
        return [n for n in self.walk() if (tag is None or n.tag == tag) and (cls is None or cls in n.cls())]

    def ancestors(self):
        n = self.parent
        while n is not None:
            yield n
            n = n.parent


class Dom(html.parser.HTMLParser):
    """The dumped DOM as a tree (Chromium's serialisation is well formed)."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", {}, None)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


MISSING = ("chromium not found: the browser test needs headless Chromium "
           "(apt-get install -y chromium; scripts/test.sh installs it)")


class BrowserPresent(unittest.TestCase):
    @unittest.skipUnless(os.environ.get("REQUIRE_BROWSER"), "only where the browser is required (CI)")
    def test_chromium_is_installed(self):
        self.assertTrue(chromium(), MISSING)


@unittest.skipUnless(chromium(), MISSING)
class ReportPageInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.bin = cli()
        cls.pages = {}
        for name in ("scenarios", "hostile_html"):
            out = cls.dir / f"{name}.html"
            subprocess.run([cls.bin, "report", "--format", "html", "-o", str(out), str(FIXTURES / f"{name}.jsonl")],
                           check=True, stderr=subprocess.DEVNULL)
            cls.pages[name] = out

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def chrome(self, *args):
        profile = tempfile.mkdtemp(dir=self.dir)
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout

    def dom(self, name, fragment=""):
        url = self.pages[name].as_uri() + fragment
        text = self.chrome("--virtual-time-budget=5000", "--dump-dom", url)
        d = Dom(text).root
        body = d.find("body")[0]
        self.assertNotIn("data-error", body.attrs, f"script error: {body.attrs.get('data-error')}")
        self.assertEqual(body.attrs.get("data-ready"), "1", "the page's script did not finish (CSP hash?)")
        return d

    def node_by_key(self, d, key):
        return [li for li in d.find("li", "node") if any(k.text() == key for k in li.find("span", "key")[:1])]

    def test_bundled_trail_opens_on_its_findings(self):
        d = self.dom("scenarios")
        # The stolen instance credentials, the collision and the deep chain are open and marked.
        inst = self.node_by_key(d, "ASIAQXAMPLEINSTANCE1")
        self.assertEqual(len(inst), 1)
        self.assertIn("m-offhost", inst[0].cls())
        self.assertTrue(any("off-host" in b.text() for b in inst[0].find("span", "b-offhost")))
        colliding = self.node_by_key(d, "ASIAQXAMPLECOLLIDE01")
        self.assertEqual(len(colliding), 3)
        self.assertTrue(all("m-collision" in li.cls() for li in colliding))
        hop3 = self.node_by_key(d, "ASIAQXAMPLECHAIN0003")
        self.assertEqual(len(hop3), 1)
        self.assertIn("m-deep", hop3[0].cls())
        # ... three tree levels under alice's key.
        keys = [a.find("span", "key")[0].text() for a in hop3[0].ancestors() if a.tag == "li"]
        self.assertEqual(keys, ["ASIAQXAMPLECHAIN0002", "ASIAQXAMPLECHAIN0001", "AKIAQXAMPLEROOTKEY01"])
        # Roots with findings come first; the unresolved root is marked.
        roots = d.find("section", "root")
        self.assertEqual(len(roots), 12)
        self.assertIn("ec2:i-0abc1234def567890", roots[0].find("span", "rname")[0].text())
        unresolved = [r for r in roots if r.find("span", "b-unresolved")]
        self.assertEqual([r.find("span", "rname")[0].text() for r in unresolved], ["unresolved:ASIAQXAMPLEUNSEEN01"])
        # A timeline for the instance, with its two off-host uses as points.
        self.assertTrue(roots[0].find("svg", "tl"))
        self.assertGreaterEqual(len(roots[0].find("circle")), 2)
        # The tables, sortable, each linking to a tree node that is on the page.
        panels = {p.find("h2")[0].children[0].strip(): p for p in d.find("div", "panel")}
        for title in ("Off-host EC2 credential use", "Role chains (depth ≥ 3) and off-host descendants",
                      "Key-ID collisions", "Live at 2024-08-01 15:00:00"):
            self.assertIn(title, panels)
            self.assertTrue(panels[title].find("th"))
        ids = {n.attrs.get("id") for n in d.walk()}
        for title in ("Off-host EC2 credential use", "Key-ID collisions",
                      "Role chains (depth ≥ 3) and off-host descendants"):
            links = panels[title].find("a")
            self.assertTrue(links, title)
            for a in links:
                self.assertIn(a.attrs["href"][1:], ids, f"{title}: {a.attrs['href']} is not on the page")

    def test_search_opens_the_path_to_every_match(self):
        # An IP: bob's and carol's keys and the sessions they issued.
        d = self.dom("scenarios", "#q=203.0.113.10")
        hits = d.find("li", "hit")
        self.assertEqual(sorted(li.find("span", "key")[0].text() for li in hits),
                         ["AKIAQXAMPLEBOBKEY001", "AKIAQXAMPLECAROLKEY1", "ASIAQXAMPLECOLLIDE01", "ASIAQXAMPLECOLLIDE01"])
        self.assertIn("4 credential(s)", d.find(None, None)[0].text())
        # A fingerprint of a credential closed by default: its root opens.
        d = self.dom("scenarios", "#q=sf1_3ac06ca")
        hits = d.find("li", "hit")
        self.assertEqual([li.find("span", "key")[0].text() for li in hits], ["ASIAQXAMPLESAML0001"])
        # Part of an ARN.
        d = self.dom("scenarios", "#q=assumed-role/ops/hop3")
        self.assertEqual([li.find("span", "key")[0].text() for li in d.find("li", "hit")], ["ASIAQXAMPLECHAIN0003"])

    def test_hostile_strings_stay_text(self):
        d = self.dom("hostile_html")
        body = d.find("body")[0]
        self.assertNotIn("data-pwned", body.attrs, "a record string ran as script")
        for n in d.walk():
            for a in n.attrs:
                self.assertFalse(a.startswith("on"), f"<{n.tag} {a}=...> from a record")
        self.assertEqual(len(d.find("script")), 2, "only the page's own data block and script")
        self.assertEqual(d.find("img") + d.find("iframe") + d.find("b") + d.find("u"), [])
        self.assertTrue(all("tl" in s.cls() for s in d.find("svg")), "only the page's own timelines")
        # The strings are shown as they are (a search for the account opens every credential).
        d = self.dom("hostile_html", "#q=111122223333")
        self.assertNotIn("data-pwned", d.find("body")[0].attrs)
        self.assertEqual(len(d.find("li", "hit")), 3)
        text = "".join(n.text() for n in d.find("main"))
        for shown in ("user/<script>document.body.setAttribute('data-pwned','1')</script>",
                      "assumed-role/r/</script><script>document.body.setAttribute('data-pwned','2')</script>",
                      "from <img src=x onerror=\"document.body.setAttribute('data-pwned','3')\">",
                      "unresolved:ASIA<svg onload=\"document.body.setAttribute('data-pwned','5')\">",
                      "198.51.100.9&amp;<u>"):
            self.assertIn(shown, text)
        # Searching for markup finds it as text too.
        d = self.dom("hostile_html", "#q=%3Cscript%3E")
        self.assertNotIn("data-pwned", d.find("body")[0].attrs)
        self.assertGreaterEqual(len(d.find("li", "hit")), 2)

    def test_screenshot(self):
        out = self.dir / "report-html.png"
        self.chrome("--virtual-time-budget=5000", f"--screenshot={out}", "--window-size=1400,900",
                    self.pages["scenarios"].as_uri())
        png = out.read_bytes()
        self.assertTrue(png.startswith(b"\x89PNG") and len(png) > 20_000, "an empty screenshot")
        if os.environ.get("UPDATE_SCREENSHOT"):
            shutil.copyfile(out, ROOT / "docs" / "report-html.png")


if __name__ == "__main__":
    unittest.main()
