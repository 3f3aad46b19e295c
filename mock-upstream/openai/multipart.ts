// A small multipart/form-data reader for the mock's uploads (POST /v1/files): the whole body is in
// memory already (server.ts), so parts are slices of it, bytes exact.

export interface Part {
  name: string;
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

/** The parts of a multipart body, or a message saying why it is not one. */
export function parseMultipart(body: Buffer, contentType: string): Part[] | string {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!/^multipart\/form-data/i.test(contentType) || !m) return 'expected a multipart/form-data body';
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) return 'the multipart body has no parts';
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') return parts; // the closing delimiter
    at += 2; // CRLF after the delimiter
    const headEnd = body.indexOf('\r\n\r\n', at);
    const next = body.indexOf(delimiter, at);
    if (headEnd < 0 || next < 0) return 'the multipart body ends inside a part';
    const headers = body.subarray(at, headEnd).toString('utf8');
    const data = body.subarray(headEnd + 4, next - 2); // the CRLF before the delimiter
    const disposition = /content-disposition:([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) return 'a multipart part has no name';
    parts.push({
      name,
      filename: /\bfilename="([^"]*)"/i.exec(disposition)?.[1],
      contentType: /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1],
      data,
    });
    at = next;
  }
}
