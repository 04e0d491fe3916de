#!/usr/bin/python3
"""Small AMQP checks against the RabbitMQ cluster of engines.sh (Debian's python3-pika).

  declare URL QUEUE                    declare a durable quorum queue
  publish URL QUEUE COUNT              publish COUNT persistent messages with confirms
  consume URL QUEUE [--expect N]       drain QUEUE; print how many arrived
  rpc-server URL QUEUE --requests N    answer N requests on QUEUE, then exit
  rpc-client URL QUEUE --requests N --reply direct|exclusive
                                       send N requests, check every reply
  availability URL[,URL...] QUEUE --seconds S
                                       publish with confirms for S seconds, one
                                       message at a time, reconnecting to the next
                                       URL on failure; print the longest gap
                                       between two confirms and what was confirmed

Every command prints one line of key=value results on stdout and exits
non-zero when the check fails. Each is bounded in time.
"""
import argparse
import signal
import sys
import time
import uuid

import pika
import pika.exceptions

QUORUM = {"x-queue-type": "quorum"}


def connect(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.blocked_connection_timeout = 30
    params.heartbeat = 10
    return pika.BlockingConnection(params)


def declare(channel, queue):
    channel.queue_declare(queue=queue, durable=True, arguments=QUORUM)


def cmd_declare(a):
    with connect(a.url) as conn:
        declare(conn.channel(), a.queue)
    print(f"declared={a.queue}")


def cmd_publish(a):
    with connect(a.url) as conn:
        ch = conn.channel()
        declare(ch, a.queue)
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        for i in range(a.count):
            ch.basic_publish("", a.queue, f"m{i}".encode(), props, mandatory=True)
    print(f"published={a.count}")


def cmd_consume(a):
    got = 0
    bodies = []
    with connect(a.url) as conn:
        ch = conn.channel()
        declare(ch, a.queue)
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            method, _, body = ch.basic_get(a.queue, auto_ack=False)
            if method is None:
                if a.expect is not None and got >= a.expect:
                    break
                if a.expect is None:
                    break
                time.sleep(0.1)
                continue
            ch.basic_ack(method.delivery_tag)
            got += 1
            bodies.append(body.decode())
    if a.ids_file:
        with open(a.ids_file, "w") as f:
            f.write("\n".join(bodies) + ("\n" if bodies else ""))
    print(f"consumed={got}")
    if a.expect is not None and got != a.expect:
        sys.exit(f"expected {a.expect} messages, got {got}")


def cmd_rpc_server(a):
    answered = 0
    with connect(a.url) as conn:
        ch = conn.channel()
        declare(ch, a.queue)
        ch.basic_qos(prefetch_count=16)

        def on_request(channel, method, props, body):
            nonlocal answered
            channel.basic_publish(
                "", props.reply_to, b"re:" + body,
                pika.BasicProperties(correlation_id=props.correlation_id))
            channel.basic_ack(method.delivery_tag)
            answered += 1
            if answered >= a.requests:
                channel.stop_consuming()

        ch.basic_consume(a.queue, on_request)
        print("ready", file=sys.stderr, flush=True)
        deadline = time.monotonic() + a.timeout
        while answered < a.requests and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.5)
    print(f"answered={answered}")
    if answered < a.requests:
        sys.exit(f"answered {answered} of {a.requests} requests")


def cmd_rpc_client(a):
    replies = {}
    with connect(a.url) as conn:
        ch = conn.channel()
        declare(ch, a.queue)
        if a.reply == "direct":
            reply_to = "amq.rabbitmq.reply-to"
        else:
            reply_to = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue

        def on_reply(_channel, _method, props, body):
            replies[props.correlation_id] = body

        # Direct reply-to needs the consumer (auto-ack) before the first publish.
        ch.basic_consume(reply_to, on_reply, auto_ack=True)
        sent = {}
        start = time.monotonic()
        for i in range(a.requests):
            cid = uuid.uuid4().hex
            sent[cid] = f"q{i}".encode()
            ch.basic_publish("", a.queue, sent[cid],
                             pika.BasicProperties(reply_to=reply_to, correlation_id=cid))
        deadline = start + a.timeout
        while len(replies) < a.requests and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
        elapsed = time.monotonic() - start
    wrong = sum(1 for cid, body in replies.items() if body != b"re:" + sent.get(cid, b"?"))
    print(f"reply={a.reply} reply_to={reply_to} sent={a.requests} replies={len(replies)} "
          f"wrong={wrong} seconds={elapsed:.2f}")
    if len(replies) != a.requests or wrong:
        sys.exit("RPC replies missing or wrong")


def cmd_availability(a):
    urls = a.urls.split(",")
    confirmed = []          # sequence numbers acknowledged by the broker
    gaps = []               # (gap seconds, at seconds since start)
    errors = 0
    seq = 0
    start = time.monotonic()
    last_ok = start
    url_index = 0
    ch = conn = None
    props = pika.BasicProperties(delivery_mode=2)
    while time.monotonic() - start < a.seconds:
        try:
            if ch is None:
                conn = connect(urls[url_index % len(urls)])
                ch = conn.channel()
                declare(ch, a.queue)
                ch.confirm_delivery()
            ch.basic_publish("", a.queue, f"a{seq}".encode(), props, mandatory=True)
            now = time.monotonic()
            confirmed.append(seq)
            gaps.append((now - last_ok, now - start))
            last_ok = now
            if a.interval:
                time.sleep(a.interval)
        except (pika.exceptions.AMQPError, OSError) as e:
            errors += 1
            print(f"publish a{seq} failed on {urls[url_index % len(urls)]}: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            try:
                if conn is not None and conn.is_open:
                    conn.close()
            except Exception:   # the connection is gone already
                pass
            ch = conn = None
            url_index += 1
            time.sleep(0.1)
        seq += 1
    try:
        if conn is not None and conn.is_open:
            conn.close()
    except Exception:
        pass
    worst = max(gaps, default=(0.0, 0.0))
    if a.ids_file:
        with open(a.ids_file, "w") as f:
            f.write("".join(f"a{s}\n" for s in confirmed))
    print(f"confirmed={len(confirmed)} attempted={seq} errors={errors} "
          f"max_gap_seconds={worst[0]:.2f} max_gap_at={worst[1]:.1f}")
    if not confirmed:
        sys.exit("nothing was confirmed")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=60, help="bound on any wait (seconds)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("declare"); s.add_argument("url"); s.add_argument("queue")
    s.set_defaults(fn=cmd_declare)
    s = sub.add_parser("publish"); s.add_argument("url"); s.add_argument("queue"); s.add_argument("count", type=int)
    s.set_defaults(fn=cmd_publish)
    s = sub.add_parser("consume"); s.add_argument("url"); s.add_argument("queue")
    s.add_argument("--expect", type=int); s.add_argument("--ids-file")
    s.set_defaults(fn=cmd_consume)
    s = sub.add_parser("rpc-server"); s.add_argument("url"); s.add_argument("queue")
    s.add_argument("--requests", type=int, required=True)
    s.set_defaults(fn=cmd_rpc_server)
    s = sub.add_parser("rpc-client"); s.add_argument("url"); s.add_argument("queue")
    s.add_argument("--requests", type=int, required=True)
    s.add_argument("--reply", choices=["direct", "exclusive"], default="direct")
    s.set_defaults(fn=cmd_rpc_client)
    s = sub.add_parser("availability"); s.add_argument("urls"); s.add_argument("queue")
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--interval", type=float, default=0.005, help="pause between publishes")
    s.add_argument("--ids-file", help="write the confirmed message bodies here")
    s.set_defaults(fn=cmd_availability)
    a = p.parse_args()
    # A hard bound whatever the broker does (a publish can block while a quorum
    # queue has no leader).
    signal.alarm(int(a.timeout + getattr(a, "seconds", 0) + 30))
    a.fn(a)


if __name__ == "__main__":
    main()
