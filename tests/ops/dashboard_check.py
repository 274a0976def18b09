"""Check that every panel of the Grafana dashboard returns data from a real Prometheus.

``check_dashboard(metrics_urls, dashboard_path, workdir)`` starts ``prometheus`` on a free
127.0.0.1 port with a 1 s scrape interval over the given /metrics URLs (and with the alert
rules loaded, so a rule that does not load or does not evaluate is reported too), waits
until every target has been scraped a few times, evaluates each panel target's ``expr``
through ``/api/v1/query`` with Grafana's variables substituted, stops Prometheus and
returns the problems found: one line per query that errored or returned no series.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cdp_tools.stack.proc import free_port

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "cdp.json"
DEFAULT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
JOB = "cdp-worker"

# Grafana's built-in variables, at values that suit a 1 s scrape interval.
BUILTIN_VARIABLES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}

_VARIABLE_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


class PrometheusError(RuntimeError):
    """Prometheus did not start, or did not scrape its targets in time."""


def prometheus_binary() -> str | None:
    """The prometheus executable: $CDP_PROMETHEUS_BIN, PATH, or Debian's /usr/bin."""
    explicit = os.environ.get("CDP_PROMETHEUS_BIN")
    if explicit:
        return explicit
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None


def iter_panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every Prometheus query target of the dashboard."""
    out = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr is None or target.get("hide"):
                continue
            out.append((str(panel.get("title", "")), str(target.get("refId", "")), str(expr)))
    return out


def dashboard_variables(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Template variables at "All" (their allValue, else .*), constants at their value."""
    values = dict(BUILTIN_VARIABLES)
    for var in dashboard.get("templating", {}).get("list", []):
        name = var["name"]
        kind = var.get("type")
        if kind in ("constant", "textbox"):
            query = var.get("query", "")
            values[name] = query if isinstance(query, str) else ""
        elif kind == "interval":
            options = str(var.get("query", "1m")).split(",")
            values[name] = options[0].strip() or "1m"
        elif kind == "datasource":
            values[name] = "cdp-prometheus"
        else:
            values[name] = var.get("allValue") or ".*"
    return values


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """Replace $name, ${name}, ${name:fmt} and [[name]]; an unknown variable is an error."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in variables:
            raise KeyError(f"unknown dashboard variable ${name}")
        return variables[name]

    # `$1` in label_replace is not a variable: only names that start with a letter or _.
    return _VARIABLE_RE.sub(
        lambda m: m.group(0) if (m.group(3) or "x")[0].isdigit() else repl(m), expr
    )


def scrape_config(metrics_urls: Sequence[str], rule_files: Sequence[Path]) -> dict[str, Any]:
    """A Prometheus configuration scraping the URLs every second, all as job cdp-worker."""
    groups: dict[tuple[str, str], list[str]] = {}
    for url in metrics_urls:
        parts = urllib.parse.urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"not an absolute URL: {url!r}")
        groups.setdefault((parts.scheme, parts.path or "/metrics"), []).append(parts.netloc)
    jobs = []
    for i, ((scheme, path), targets) in enumerate(sorted(groups.items())):
        jobs.append(
            {
                "job_name": JOB if i == 0 else f"{JOB}-{i}",
                "scheme": scheme,
                "metrics_path": path,
                "static_configs": [{"targets": targets}],
                # Every target is a worker, whatever its path: one job label for the queries.
                "relabel_configs": [{"target_label": "job", "replacement": JOB}],
            }
        )
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": jobs,
    }


class Prometheus:
    """A real Prometheus server on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(
        self, metrics_urls: Sequence[str], workdir: Path, rule_files: Sequence[Path] = ()
    ) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise PrometheusError("no prometheus executable (PATH, /usr/bin, CDP_PROMETHEUS_BIN)")
        self.binary = binary
        self.metrics_urls = list(metrics_urls)
        self.workdir = Path(workdir)
        self.rule_files = list(rule_files)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "prometheus.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        # JSON is YAML: no YAML library needed to write the configuration.
        config.write_text(json.dumps(scrape_config(self.metrics_urls, self.rule_files), indent=2))
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            with self.log_path.open("wb") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready(timeout_s=30):
                return self
            self.stop()
        raise PrometheusError(f"prometheus did not start; log:\n{self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns ``data`` or raises ValueError with Prometheus's error."""
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                body = json.load(exc)
            except ValueError:
                raise ValueError(f"HTTP {exc.code} from {path}") from exc
        if body.get("status") != "success":
            raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> Any:
        return self.api("query", query=expr, time=f"{time.time():.3f}")

    def wait_scraped(self, scrapes: int, timeout_s: float) -> None:
        """Until every target is up and has at least ``scrapes`` samples of ``up``."""
        expected = len(self.metrics_urls)
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(
                f'count_over_time(up{{job="{JOB}"}}[5m]) and up{{job="{JOB}"}} == 1'
            )
            done = [r for r in result["result"] if float(r["value"][1]) >= scrapes]
            if len(done) >= expected:
                return
            if time.monotonic() > deadline:
                targets = self.api("targets")["activeTargets"]
                states = "; ".join(
                    f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets
                )
                raise PrometheusError(f"targets not scraped {scrapes} times: {states}")
            time.sleep(0.25)


def _values(data: Mapping[str, Any]) -> list[float]:
    kind = data["resultType"]
    result = data["result"]
    if kind == "scalar":
        return [float(result[1])]
    if kind == "vector":
        return [float(r["value"][1]) for r in result]
    if kind == "matrix":
        return [float(v[1]) for r in result for v in r["values"]]
    return []


def check_queries(
    prom: Prometheus, dashboard: Mapping[str, Any], *, require_finite: bool
) -> list[str]:
    variables = dashboard_variables(dashboard)
    problems = []
    for title, ref, raw in panel_queries(dashboard):
        where = f"panel {title!r} query {ref}"
        try:
            expr = substitute(raw, variables)
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]}")
            continue
        try:
            data = prom.query(expr)
        except ValueError as exc:
            problems.append(f"{where}: error {exc} in {expr}")
            continue
        values = _values(data)
        if not values:
            problems.append(f"{where}: no series for {expr}")
        elif require_finite and all(math.isnan(v) for v in values):
            problems.append(f"{where}: only NaN for {expr}")
    return problems


def check_rules(prom: Prometheus, *, wait_s: float = 5.0) -> list[str]:
    """Alert rules that Prometheus could not evaluate (health "err")."""
    deadline = time.monotonic() + wait_s
    while True:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        if all(r.get("health") != "unknown" for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return [
        f"alert rule {r.get('name')!r}: {r.get('lastError') or r.get('health')}"
        for r in rules
        if r.get("health") not in ("ok", "unknown")
    ]


def check_dashboard(
    metrics_urls: list[str],
    dashboard_path: str | os.PathLike[str] = DEFAULT_DASHBOARD,
    workdir: str | os.PathLike[str] | None = None,
    *,
    scrapes: int = 3,
    timeout_s: float = 60.0,
    require_finite: bool = False,
    rule_files: Sequence[str | os.PathLike[str]] = (DEFAULT_RULES,),
    check_labels: bool = False,
) -> list[str]:
    """Problems of the dashboard against the workers at ``metrics_urls`` (empty: none).

    A problem is a panel query that Prometheus rejects or that returns no series; with
    ``require_finite``, also one whose every value is NaN (a quantile over no observations).
    Alert rules in ``rule_files`` are loaded as well and reported if they fail to evaluate.
    With ``check_labels``, the labels the panels and rules use are held to the series
    scraped (label_problems).
    Raises PrometheusError if Prometheus cannot start or scrape the targets.
    """
    if not metrics_urls:
        raise ValueError("no metrics URL to scrape")
    dashboard = json.loads(Path(dashboard_path).read_text())
    if workdir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cdp-prom-") as tmp:
            return check_dashboard(
                metrics_urls,
                dashboard_path,
                tmp,
                scrapes=scrapes,
                timeout_s=timeout_s,
                require_finite=require_finite,
                rule_files=rule_files,
                check_labels=check_labels,
            )
    rules = [Path(p).resolve() for p in rule_files]
    with Prometheus(metrics_urls, Path(workdir), rules) as prom:
        prom.wait_scraped(scrapes, timeout_s)
        problems = check_queries(prom, dashboard, require_finite=require_finite)
        problems += check_rules(prom)
        if check_labels:
            problems += label_problems(prom, labelled_queries(dashboard, rules))
        return problems


# --- labels -------------------------------------------------------------------------------

_SELECTOR_RE = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER_RE = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|`[^`]*`)')
_GROUPED_RE = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE
)
_TEMPLATE_RE = re.compile(r"\{\{\s*(?:\$labels\.)?(\w+)\s*\}\}")
_LABEL_REPLACE_RE = re.compile(r'label_replace\(.*?\)\s*,\s*"(\w+)"')


def labelled_queries(
    dashboard: Mapping[str, Any], rule_files: Sequence[Path]
) -> list[tuple[str, str, str]]:
    """(where, expr, text naming labels) of every panel target (its legend) and alert rule
    (its annotations), dashboard variables substituted."""
    import yaml

    variables = dashboard_variables(dashboard)
    out = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr") is None or target.get("hide"):
                continue
            where = f"panel {panel.get('title', '')!r} query {target.get('refId', '')}"
            expr = substitute(str(target["expr"]), variables)
            out.append((where, expr, str(target.get("legendFormat", ""))))
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    text = " ".join(map(str, rule.get("annotations", {}).values()))
                    out.append((f"alert {rule['alert']!r}", str(rule["expr"]), text))
    return out


def label_problems(prom: Prometheus, queries: Sequence[tuple[str, str, str]]) -> list[str]:
    """Labels the queries name that no scraped series has: a matcher's label, or its
    value when it must equal one (=), on the metric it selects; a label grouped by or
    shown in a legend or annotation on the metrics of the query. A metric with no series
    at all (a counter nothing has counted yet) is not judged. Such queries still return
    data where they group by nothing or end in `or on() vector(0)`: a renamed label or
    value would go unnoticed by check_queries."""
    seen: dict[str, set[str]] = {}

    def labels_of(name: str) -> set[str]:
        if name not in seen:
            series = prom.query(name)["result"]
            seen[name] = {label for s in series for label in s["metric"]} - {"__name__"}
        return seen[name]

    problems = []
    for where, expr, text in queries:
        for name, matchers in _SELECTOR_RE.findall(expr):
            if not labels_of(name):
                continue
            for label, op, value in _MATCHER_RE.findall(matchers):
                if label not in labels_of(name):
                    problems.append(f"{where}: {name} has no label {label!r}")
                elif op == "=" and not prom.query(f"{name}{{{label}={value}}}")["result"]:
                    problems.append(f"{where}: no series of {name}{{{label}={value}}}")
        names = metric_names_in(expr)
        present = set().union(*(labels_of(n) for n in names))
        if not present:
            continue
        used = {
            label.strip()
            for group in _GROUPED_RE.findall(_STRINGS_RE.sub('""', expr))
            for label in group.split(",")
        }
        used |= set(_TEMPLATE_RE.findall(text))
        unknown = used - present - set(_LABEL_REPLACE_RE.findall(expr)) - {""}
        if unknown:
            problems.append(f"{where}: no series of {sorted(names)} has {sorted(unknown)}")
    return problems


# --- metric names -------------------------------------------------------------------------

_STRINGS_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING_RE = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENT_RE = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = _STRINGS_RE.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries
    text = _GROUPING_RE.sub(" ", text)
    names = set()
    for match in _IDENT_RE.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def known_metric_names() -> set[str]:
    """Every series name pipeline.metrics can export (counters' _total, histograms' parts; no
    _created: pipeline.metrics turns them off)."""
    from prometheus_client.metrics import MetricWrapperBase

    from pipeline import metrics

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def unknown_metric_names(expr: str, known: set[str]) -> set[str]:
    """Names in ``expr`` that are neither pipeline metrics, faust_* nor Prometheus's ``up``."""
    return {
        n
        for n in metric_names_in(expr)
        if n not in known and n != "up" and not n.startswith("faust_")
    }
