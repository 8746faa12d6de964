# Image for the worker, bridge and scheduler services of compose.yaml.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends unixodbc odbc-postgresql tdsodbc \
    && odbcinst -i -d -f /usr/share/tdsodbc/odbcinst.ini \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
USER nobody
