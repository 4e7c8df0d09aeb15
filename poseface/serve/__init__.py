"""`poseface serve`: a local web page that restores one dropped photo at a time.

The standard library's http.server (no extra packages): `GET /` is the page (serve/page.html),
`POST /restore?model=&fidelity=&upscale=&name=` takes the image file as the request body and answers
JSON with the input and output previews (face boxes drawn) and a download link, or `{"error": one line}`;
`GET /result/TOKEN/NAME.png` is the full-size restored photo. See README "Web page".
"""

from poseface.serve.app import RestoreService, ServeLimits, render_page, start_server

__all__ = ["RestoreService", "ServeLimits", "render_page", "start_server"]
