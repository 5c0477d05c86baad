/* Transitional (issue 12): the client library moved to rpc/client/. At
 * merge, replace #include "rpc/client.h" by #include "rpc/client/client.h" over
 * the tree and delete this file. */
#include "rpc/client/client.h"
