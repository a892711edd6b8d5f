# A small prometheus_client app whose metric and label names are not legacy names (dots, a
# slash, non-ASCII), written with escaping=allow-utf-8 as Prometheus 3 asks for them.
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_om

r = CollectorRegistry()
req = Counter('http.server.requests', 'Requests by "route".', ['http.route', 'status_code'], registry=r)
lat = Histogram('http.server.duration', 'Latency.', ['http.route'], registry=r, unit='seconds')
temp = Gauge('température', 'Degrees.', ['salle/étage'], registry=r)
legacy = Gauge('queue_depth', 'A legacy name with a UTF-8 label.', ['queue.name'], registry=r)
for i, route in enumerate(['/api/orders', '/api/users/{id}', '/healthz']):
    for code in ['200', '500']:
        req.labels(route, code).inc(i * 7 + len(code))
    for v in [0.003, 0.02, 0.4, 2.0]:
        lat.labels(route).observe(v * (i + 1))
temp.labels('B/2').set(21.5)
legacy.labels('emails').set(4)
out = generate_latest(r, escaping='allow-utf-8') if sys.argv[1] == 'text' else generate_om(r, escaping='allow-utf-8')
sys.stdout.write(out.decode())
