/* MCP (Model Context Protocol) server: JSON-RPC 2.0 over newline-delimited
 * JSON, exposing sandbox operations as MCP tools.
 *
 * The transport is the MCP stdio one: each request is one JSON object on one
 * line of in_fd; each response is one compact JSON object on one line of
 * out_fd.  Nothing else is ever written to out_fd: the library's warnings go
 * to stderr through ak_set_warn_handler(), and commands run by the tools get
 * their own pipes, never the server's descriptors.
 *
 * Tool failures (bad arguments, unknown sandbox, a sandbox that cannot
 * start) are tool results with "isError": true, so the model sees why; only
 * protocol faults are JSON-RPC errors.  Tool calls run concurrently (each
 * on a thread of its own) and notifications/cancelled ends one.
 */
#ifndef AK_MCP_H
#define AK_MCP_H

#include <stdbool.h>
#include <stddef.h>

/* Serves requests from in_fd until end of input, then waits for the calls
 * still running and sends their answers.  Returns 0 at end of input, -1
 * when reading or writing fails (the calls still running are cancelled;
 * the reason is logged on stderr).  Installs a
 * warning handler that writes to stderr.  Neither descriptor is closed. */
int ak_mcp_serve (int in_fd, int out_fd);

/* Handles one request line (len bytes, need not be NUL-terminated; a
 * trailing "\r" is ignored), a tool call included, on the calling thread.
 * Returns the response as a heap string without a newline, which the
 * caller frees, or NULL when there is nothing to send (a notification, a
 * client's response, a blank line). */
char *ak_mcp_handle_line (const char *line, size_t len);

/* When on, tools/call checks a call's arguments exactly as usual but acts
 * on nothing: no sandbox is created, run or touched.  For fuzzing the
 * request handler. */
void ak_mcp_set_dry_run (bool on);

#endif
