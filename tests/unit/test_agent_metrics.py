"""agent.metrics: output_metric_format parsers; bad lines are skipped, never fatal."""

from __future__ import annotations

from agent.metrics import extract_metrics
from core.resources.common import MetricTag

NOW = 1_700_000_000


def points(fmt: str, output: str) -> list[tuple[str, float, int, list[tuple[str, str]]]]:
    return [(p.name, p.value, p.timestamp, [(t.name, t.value) for t in p.tags or []])
            for p in extract_metrics(fmt, output, NOW)]


def test_nagios_perfdata() -> None:
    out = "DISK OK - free space | /=2643MB;5948;5958;0;5968 'data disk'=30%;80;90 bad=x time=0.5s\nlong text"
    assert points("nagios_perfdata", out) == [
        ("/", 2643.0, NOW, []), ("data disk", 30.0, NOW, []), ("time", 0.5, NOW, [])]
    assert points("nagios_perfdata", "no perfdata here") == []


def test_graphite() -> None:
    out = "servers.web.cpu 12.5 1699999999\nservers.web.mem 3\nnot a metric line at all\nx y 1"
    assert points("graphite_plaintext", out) == [
        ("servers.web.cpu", 12.5, 1699999999, []), ("servers.web.mem", 3.0, NOW, [])]


def test_influx_line() -> None:
    out = ("cpu,host=web,region=eu usage=0.5,idle=99i 1699999999000000000\n"
           "mem free=10\n# comment\nbad\nweather,city=x temp=1,desc=\"sunny\"")
    assert points("influxdb_line", out) == [
        ("cpu.usage", 0.5, 1699999999, [("host", "web"), ("region", "eu")]),
        ("cpu.idle", 99.0, 1699999999, [("host", "web"), ("region", "eu")]),
        ("mem.free", 10.0, NOW, []),
        ("weather.temp", 1.0, NOW, [("city", "x")]),
    ]


def test_opentsdb() -> None:
    out = "put sys.cpu 1699999999 42 host=web\nsys.mem 1699999999000 7\nput broken"
    assert points("opentsdb_line", out) == [
        ("sys.cpu", 42.0, 1699999999, [("host", "web")]), ("sys.mem", 7.0, 1699999999, [])]


def test_prometheus_text() -> None:
    out = ('# HELP http_requests_total total\n# TYPE http_requests_total counter\n'
           'http_requests_total{method="post",code="200"} 1027 1699999999000\n'
           'up 1\nbroken{ 1\ntemp{l="a\\"b"} NaN\n')
    assert points("prometheus_text", out) == [
        ("http_requests_total", 1027.0, 1699999999, [("method", "post"), ("code", "200")]),
        ("up", 1.0, NOW, []),
    ]


def test_extra_tags_and_unknown_format() -> None:
    got = extract_metrics("graphite_plaintext", "a 1 5", NOW, [MetricTag(name="env", value="prod")])
    assert [(t.name, t.value) for t in got[0].tags or []] == [("env", "prod")]
    assert extract_metrics("", "a 1 5", NOW) == []
    assert extract_metrics("nope", "a 1 5", NOW) == []
