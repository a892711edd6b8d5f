# A small prometheus_client app: what a Python service exposes, in both formats.
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, Info, Enum, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_om
from prometheus_client import ProcessCollector, PlatformCollector, GCCollector

r = CollectorRegistry()
ProcessCollector(registry=r); PlatformCollector(registry=r); GCCollector(registry=r)
req = Counter('http_requests', 'HTTP requests handled, by "method" and code.', ['method', 'code', 'path'], registry=r)
lat = Histogram('http_request_duration_seconds', 'Request latency.', ['method', 'path'], registry=r, unit='seconds')
size = Summary('http_response_size_bytes', 'Response sizes.', ['method'], registry=r)
inflight = Gauge('http_requests_in_flight', 'Requests in flight.', registry=r)
info = Info('build', 'Build facts.', registry=r)
state = Enum('worker_state', 'Worker state.', states=['starting', 'running', 'stopped'], registry=r)
info.info({'version': '1.4.2', 'commit': 'a1b2c3d', 'branch': 'main'})
state.state('running')
inflight.set(3)
import random
random.seed(7)
for i in range(400):
    m = random.choice(['GET', 'POST', 'PUT', 'DELETE'])
    p = random.choice(['/api/orders', '/api/users/{id}', '/healthz', '/api/items\\list', '/search?q="x"'])
    c = random.choice(['200', '201', '404', '500'])
    req.labels(m, c, p).inc()
    lat.labels(m, p).observe(random.expovariate(20), exemplar={'trace_id': '%032x' % random.getrandbits(128)} if i % 7 == 0 else None)
    size.labels(m).observe(random.randint(10, 90000))
sys.stdout.write(generate_latest(r).decode() if sys.argv[1] == 'text' else generate_om(r).decode())
