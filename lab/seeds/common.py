"""What every seed app answers: GET /sleep?ms=N -> {"message":"Done"} after N ms."""

from urllib.parse import parse_qs

DONE = {"message": "Done"}


def sleep_ms(query_string):
    """The N of ?ms=N (0 when absent or malformed), in seconds."""
    values = parse_qs(query_string).get("ms", ["0"])
    try:
        return max(0, int(values[0])) / 1000.0
    except ValueError:
        return 0.0
