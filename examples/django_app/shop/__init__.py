"""A minimal Django project wired with observabilipy (see ``settings.py``).

Serve it with gunicorn (WSGI) or uvicorn (ASGI), from ``examples/django_app``::

    gunicorn -w 4 shop.wsgi
    uvicorn shop.asgi:application
    curl localhost:8000/users/7
    curl localhost:8000/observability/metrics/prometheus
    curl "localhost:8000/observability/logs?min_level=warning"
"""
