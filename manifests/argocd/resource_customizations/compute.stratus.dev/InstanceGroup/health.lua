-- Argo CD health check for a stratus InstanceGroup (Lua 5.1, as Argo CD embeds), after
-- Argo CD's own Deployment check. Progressing until the controller has observed the current
-- generation and while a rollout or a scale runs (fewer updated or available Instances than
-- replicas, old ones left); Degraded when the rollout halted (Progressing=False: a failing
-- template, a refused create) or Synced=False; Healthy once Ready=True.
local hs = {}
local function condition(conditions, t)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == t then return c end
  end
  return nil
end
local function describe(c, fallback)
  if c == nil then return fallback end
  local m = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if m ~= "" then m = m .. ": " end
    m = m .. c.message
  end
  if m == "" then return fallback end
  return m
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the object"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end
local progressing = condition(obj.status.conditions, "Progressing")
if progressing ~= nil and progressing.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(progressing, "Rollout halted")
  return hs
end
local synced = condition(obj.status.conditions, "Synced")
if synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(synced, "Not synced")
  return hs
end
local want = 1
if obj.spec ~= nil and obj.spec.replicas ~= nil then want = obj.spec.replicas end
local current = obj.status.replicas or 0
local updated = obj.status.updatedReplicas or 0
local available = obj.status.availableReplicas or 0
if updated < want then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. updated .. " out of " .. want .. " new instances have been updated"
  return hs
end
if current > updated then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. (current - updated) .. " old instances are pending termination"
  return hs
end
if available < updated then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. available .. " of " .. updated .. " updated instances are available"
  return hs
end
local ready = condition(obj.status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = want .. " of " .. want .. " instances available"
  return hs
end
hs.status = "Progressing"
hs.message = describe(ready, "Waiting for Ready")
return hs
