"""Drives gridscope's Open311 GeoReport v2 endpoints with an existing client library
(PyPI `georeport`), in JSON and XML, after creating requests the way the specification says
(form-encoded POST). Exits non-zero on the first disagreement; prints what it checked."""
import sys

import requests
from georeport import GeoReport

root, api_key = sys.argv[1], sys.argv[2]

# Create: form-encoded, WGS84 lat/long, as GeoReport v2 specifies (georeport cannot POST).
created = []
for fmt in ("json", "xml"):
    r = requests.post(
        f"{root}/requests.{fmt}",
        data={
            "api_key": api_key,
            "service_code": "matter:06002",
            "lat": "34.7499",
            "long": "113.6547",
            "description": f"open311 {fmt}",
            "media_url": "https://img.example.cn/a.jpg",
            "account_id": "citizen-42",
        },
    )
    assert r.status_code == 201, (r.status_code, r.text)
    if fmt == "json":
        created.append(r.json()[0]["service_request_id"])
    else:
        assert "<service_request_id>" in r.text, r.text
        created.append(r.text.split("<service_request_id>")[1].split("<")[0])
print("created", created)

# Errors come back in the spec's shape.
r = requests.post(f"{root}/requests.json", data={"api_key": api_key, "service_code": "matter:99999", "lat": "34.7", "long": "113.6"})
assert r.status_code == 400 and r.json()[0]["code"] == 400 and "service_code" in r.json()[0]["description"], r.text
r = requests.post(f"{root}/requests.xml", data={"api_key": api_key, "service_code": "matter:06002"})
assert r.status_code == 400 and "<errors><error><code>400</code>" in r.text, r.text

for fmt in ("json", "xml"):
    client = GeoReport(root, output_format=fmt)
    services = client.get_service_list()
    codes = {s["service_code"]: s for s in services}
    assert len(services) == 403, len(services)
    assert codes["matter:06002"]["service_name"], codes["matter:06002"]
    assert str(codes["matter:06002"]["metadata"]).lower() == "false"
    definition = client.get_service_definition("matter:06002")
    assert definition["service_code"] == "matter:06002", definition
    open_requests = client.get_service_requests(status="open", service_code="matter:06002")
    if isinstance(open_requests, dict):  # xmltodict gives a dict for a single element
        open_requests = [open_requests]
    ids = {str(x["service_request_id"]) for x in open_requests}
    assert set(created) <= ids, (created, ids)
    for rid in created:
        one = client.get_service_request(rid)
        assert str(one["service_request_id"]) == rid, one
        assert one["status"] == "open" and one["service_code"] == "matter:06002", one
        assert abs(float(one["lat"]) - 34.7499) < 1e-9 and abs(float(one["long"]) - 113.6547) < 1e-9, one
        assert one["agency_responsible"] and one["address_id"], one
        assert one["media_url"] == "https://img.example.cn/a.jpg", one
    print(f"{fmt}: {len(services)} services, {len(ids)} open requests, {len(created)} read back")
print("open311 ok")
