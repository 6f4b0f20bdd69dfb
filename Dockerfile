# One image for every GaitPay service; the Deployment's command picks the service
# (python -m matcher, python -m gateway, ...). Runs as an unprivileged user with a read-only
# root filesystem (GAITPAY_HOME and /tmp are emptyDir volumes in k8s/). The source tree is
# installed in place (/app), so the pose models in edge/models travel with it.
FROM python:3.11-slim AS build
WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN python -m venv /opt/gaitpay && /opt/gaitpay/bin/pip install --no-cache-dir -r requirements.lock
COPY . .
RUN /opt/gaitpay/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e .

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin gaitpay
COPY --from=build /opt/gaitpay /opt/gaitpay
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/gaitpay/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GAITPAY_HOME=/var/lib/gaitpay
USER 10001:10001
EXPOSE 50051-50056 8080
CMD ["python", "-m", "gateway"]
