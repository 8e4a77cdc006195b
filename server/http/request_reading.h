// How the server reads a request with Beast's parser: the limits it sets on a fresh parser, the
// bound on its read buffer, and the status each read error is answered with. Shared by the
// server (server.cc) and the request fuzzer (request_fuzzer.cc), so the fuzzer exercises the
// parser exactly as configured in production.
#ifndef BULWARK_SERVER_HTTP_REQUEST_READING_H_
#define BULWARK_SERVER_HTTP_REQUEST_READING_H_

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace bulwark::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Bytes read from a socket at once outside a request (waiting for one, lingering after the last).
inline constexpr size_t kReadChunkBytes = 4096;

// Limits a fresh parser. Beast refuses a header block once it has max_header_bytes of it without
// its end, but a complete block can pass its check while longer than the limit by up to the
// request line's length: HeaderTooLarge closes that gap once the header is read.
inline void LimitParser(RequestParser& parser, size_t max_header_bytes, size_t max_request_bytes) {
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(max_header_bytes, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(static_cast<uint64_t>(max_request_bytes));
}

// `header_bytes`: what reading the header consumed (the request line, fields and blank line).
inline bool HeaderTooLarge(size_t header_bytes, size_t max_header_bytes) {
  return header_bytes > max_header_bytes;
}

// The most a connection's read buffer holds: a whole header block and one read more.
inline size_t ReadBufferBytes(size_t max_header_bytes) {
  return max_header_bytes + kReadChunkBytes;
}

// The status a failed read is answered with: 431 (header block too large), 413 (body too large:
// an announced Content-Length is refused while the header is read, chunks as they add up), 400
// (malformed), or 0 when there is no one to answer (end of stream, reset, timeout: the
// connection just closes). `reading_header`: whether the header was still being read.
inline int StatusForReadError(const boost::system::error_code& ec, bool reading_header) {
  namespace bhttp = boost::beast::http;
  if (ec == bhttp::error::header_limit) return 431;
  // The buffer holds a whole header block; in a body it can overflow only on a chunk header
  // (with its extensions) longer than the buffer.
  if (ec == bhttp::error::buffer_overflow) return reading_header ? 431 : 400;
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return 0;
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) return 400;
  return 0;
}

}  // namespace bulwark::http

#endif  // BULWARK_SERVER_HTTP_REQUEST_READING_H_
