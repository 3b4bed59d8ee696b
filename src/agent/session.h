#ifndef AK_AGENT_SESSION_H
#define AK_AGENT_SESSION_H

#include "agent/agent.h"

/* Serves one connection: its first frame says what it wants.  Returns the
 * exit status of the serving process. */
int ak_session_serve (int conn, const ak_agent_conf_t *conf);

#endif
