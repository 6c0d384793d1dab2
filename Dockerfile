FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY slo ./slo
COPY alerts ./alerts
COPY dashboard ./dashboard
RUN pip install --no-cache-dir --no-deps . && pip install --no-cache-dir confluent-kafka==2.16.1
USER nobody
ENTRYPOINT ["paysignal"]
