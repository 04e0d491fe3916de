# The worker. Build context: the repository root.
#   docker build -t kvworker .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /source
COPY Directory.Build.props Directory.Packages.props appsettings.json ./
COPY contracts/ contracts/
COPY src/ src/
RUN dotnet publish src/KvWorker/KvWorker.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/runtime:10.0
WORKDIR /app
COPY --from=build /app .
# Configuration comes from the environment: ATLAS_KV_STORE_URL, RabbitMq__Host, ...
# The health endpoint is on in the image, for orchestrators' probes.
ENV Health__Port=8080
EXPOSE 8080
USER $APP_UID
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s CMD ["dotnet", "KvWorker.dll", "health", "ready"]
ENTRYPOINT ["dotnet", "KvWorker.dll"]
