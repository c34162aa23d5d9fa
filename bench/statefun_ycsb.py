"""The YCSB record function of bench/ycsb-job.ts, written with the official StateFun Python SDK, for
`npm run bench -- statefun`: a write replaces one of the 10 fields of the record and answers with
the request id on the Kafka egress `eddy/responses` (topic $EDDY_BENCH_RESPONSES_TOPIC)."""
import json
import os

from aiohttp import web
from statefun import (Context, Message, RequestReplyHandler, StatefulFunctions, ValueSpec,
                      kafka_egress_message, make_json_type)

REQUEST = make_json_type("ycsb/Request")
RECORD = make_json_type("ycsb/Record")
RESPONSES_TOPIC = os.environ["EDDY_BENCH_RESPONSES_TOPIC"]

functions = StatefulFunctions()


@functions.bind(typename="ycsb/record", specs=[ValueSpec(name="record", type=RECORD)])
async def record(context: Context, message: Message):
    request = message.as_type(REQUEST)
    if request["op"] == "insert":
        context.storage.record = request["fields"]
    else:
        fields = context.storage.record or [""] * 10
        fields[request["field"]] = request["value"]
        context.storage.record = fields
    response = {"requestId": request["requestId"], "status": 200}
    context.send_egress(kafka_egress_message(typename="eddy/responses", topic=RESPONSES_TOPIC,
                                             key=str(request["requestId"]), value=json.dumps(response)))


handler = RequestReplyHandler(functions)


async def serve(request: web.Request) -> web.Response:
    response = await handler.handle_async(await request.read())
    return web.Response(body=response, content_type="application/octet-stream")


app = web.Application()
app.add_routes([web.post("/statefun", serve)])
