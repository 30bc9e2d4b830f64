"""An assistant's handler as README shows it: the real ``openai`` client instrumented by
``opentelemetry-instrumentation-openai-v2``, spans exported one by one (``SimpleSpanProcessor``) to the
endpoint named by ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` with ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``.

Run in a process of its own (``python -m tests.otlp_openai_driver OPENAI_BASE_URL MODEL USER_ID``): the
instrumentation patches the openai module globally. Prints the model's answer.
"""

from __future__ import annotations

import sys

import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def main(openai_url: str, model: str, user_id: str) -> None:
    # The channel on the resource: the model call's span carries only what the instrumentation puts there.
    provider = TracerProvider(
        resource=Resource.create({"service.name": "salon-bot", "leadtrail.channel": "telegram"})
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    OpenAIInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    client = openai.OpenAI(base_url=openai_url, api_key="yandex-api-key")
    handler = provider.get_tracer("salon.handler")
    with handler.start_as_current_span("handle_message", attributes={"user.id": user_id}):
        reply = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "Ты администратор барбершопа."},
                {"role": "user", "content": "Запишите меня на стрижку завтра"},
            ],
        )
    provider.shutdown()
    print(reply.choices[0].message.content)


if __name__ == "__main__":
    main(*sys.argv[1:4])
