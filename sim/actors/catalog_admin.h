// The catalog administrator: registers catalog entries (some with a wrong SHA-256, which must be
// refused), deletes them, reads them, mounts and unmounts them and reloads their plugins, one
// request at a time from its own random stream.
#ifndef BULWARK_SIM_ACTORS_CATALOG_ADMIN_H_
#define BULWARK_SIM_ACTORS_CATALOG_ADMIN_H_

#include "base/env/random.h"
#include "sim/actors/actor.h"

namespace bulwark::sim {

class CatalogAdmin final : public Actor {
 public:
  explicit CatalogAdmin(World& world);

  absl::string_view name() const override { return "catalog-admin"; }
  void OnReady() override;

 private:
  void Loop();
  void Op();

  World& world_;
  SeededRandom random_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_CATALOG_ADMIN_H_
