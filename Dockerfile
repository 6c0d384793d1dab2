FROM python:3.11-slim
WORKDIR /app
# The runtime lock only (hashes checked): no test tool reaches the production image.
COPY requirements/runtime.lock ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY slo ./slo
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY paysignal ./paysignal
RUN pip install --no-cache-dir --no-deps .
USER nobody
ENTRYPOINT ["paysignal"]
