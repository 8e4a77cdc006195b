// Random (version 4) UUIDs from the Env's Random: request ids, HA holder ids.
#ifndef BULWARK_BASE_CRYPTO_UUID_H_
#define BULWARK_BASE_CRYPTO_UUID_H_

#include <string>

#include "base/env/random.h"

namespace bulwark::crypto {

// "xxxxxxxx-xxxx-4xxx-Yxxx-xxxxxxxxxxxx", lowercase hex, Y in 8..b.
std::string RandomUuid(Random& random);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_UUID_H_
