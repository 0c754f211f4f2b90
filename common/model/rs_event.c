#include "rs_event.h"
#include "rs_util.h"

#include <string.h>

const char *rs_event_type_name(rs_event_type_t t)
{
        return t == RS_EV_SIGNUP ? "SignupEvent" : "PaymentEvent";
}

const char *rs_role_name(rs_role_t r)
{
        return r == RS_ROLE_REFERRER ? "REFERRER" : "REFEREE";
}
