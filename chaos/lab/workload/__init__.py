"""The sample workload: the system under test that the lab runs (gateway and inventory).

Run as ``python -m chaos.lab.workload gateway|inventory ...``; kept small and real: HTTP/1.1
keep-alive, Prometheus metrics, a circuit breaker, durable state.
"""
