#include "rs_util.h"
